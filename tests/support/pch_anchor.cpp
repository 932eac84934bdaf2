// Compiled with the shared precompiled header, so fiber_test_main, which owns that header, has a
// rule that builds it (its only other source, doctest_main.cpp, must skip it); without one the
// test executables that REUSE_FROM it find no rule for the .gch on a fresh build directory.
