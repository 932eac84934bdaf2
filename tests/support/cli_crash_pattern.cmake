# What the stderr of a `fiber` command under test must never hold, whatever its exit status: a
# crash, a stack dump, or a sanitizer report (a FIBER_SANITIZE build; UBSan's "runtime error:" line
# has no stack frame), so that a command expected to fail cannot pass by failing that way.
# Included by every script that runs the command line for a test (tests/io/run_cli.cmake,
# tests/text/run_cli.cmake, tests/image/expect_cli.cmake).
set(fiber_cli_crash_pattern
    "terminate called|Segmentation|Aborted|stack trace|#0 |AddressSanitizer|LeakSanitizer|runtime error: ")
