// Compiles a precompiled header once (the test suite's, the doc examples'); their executables reuse it.
