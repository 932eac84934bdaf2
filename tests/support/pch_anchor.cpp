// Compiles the test suite's precompiled header once; the test executables reuse it.
