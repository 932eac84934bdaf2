# Flags for the binaries this project builds itself (tests, tools, examples, benchmarks).
# They are not part of fiber::fiber: a host program picks its own -march.
add_library(fiber_build_flags INTERFACE)
add_library(fiber::build_flags ALIAS fiber_build_flags)

# Release keeps assertions on: our checks are the point of the test build.
string(REPLACE "-DNDEBUG" "" CMAKE_CXX_FLAGS_RELEASE "${CMAKE_CXX_FLAGS_RELEASE}")
set(CMAKE_CXX_FLAGS_RELEASE "${CMAKE_CXX_FLAGS_RELEASE}" CACHE STRING "" FORCE)

# FIBER_APP_OPT_FLAGS: optimisation flags for the `fiber` command and the examples ground_phrase and
# train_tiny in Release builds (GCC/Clang); empty (the default) keeps the build type's -O3.
# scripts/test.sh sets -O2: the suite runs these programs for seconds, and on the Zen 3 of
# 2026-12-07 -O2 compiled tools/fiber/commands_coarse.cpp in 195 s of CPU against 240 s. Their
# training runs about 4 % slower at -O2 (examples/train_coarse, 1 thread: 25.8 s against 24.7 s),
# so the demo (examples/train_coarse) and the benchmarks keep the build type's level always.
set(FIBER_APP_OPT_FLAGS "" CACHE STRING "optimisation flags of the fiber command and the examples ground_phrase and train_tiny in Release builds (GCC/Clang); empty: the build type's")
# fiber_release_optimisation(target scope flags): `flags` (e.g. -O2) after the build type's own in
# Release builds with GCC/Clang, where the last -O wins; nothing when `flags` is empty.
function(fiber_release_optimisation target scope flags)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang" AND flags)
    target_compile_options(${target} ${scope} $<$<CONFIG:Release>:${flags}>)
  endif()
endfunction()
function(fiber_app_optimisation target)
  fiber_release_optimisation(${target} PRIVATE "${FIBER_APP_OPT_FLAGS}")
endfunction()

# -Wno-(maybe-)uninitialized: GCC 12 warns inside its own avx512fintrin.h (_mm512_undefined_*)
# wherever xsimd uses those intrinsics; the warnings are false positives and bury real ones.
target_compile_options(fiber_build_flags INTERFACE -Wall -Wextra -Wno-unused-parameter -Wno-maybe-uninitialized -Wno-uninitialized)
if(NOT FIBER_PORTABLE)
  include(CheckCXXCompilerFlag)
  check_cxx_compiler_flag(-march=native FIBER_HAS_MARCH_NATIVE)
  if(FIBER_HAS_MARCH_NATIVE)
    target_compile_options(fiber_build_flags INTERFACE -march=native)
    # Report what the host offers, as the compiler sees it with -march=native.
    include(CheckCXXSourceCompiles)
    set(CMAKE_REQUIRED_FLAGS -march=native)
    check_cxx_source_compiles("#ifndef __AVX512F__\n#error no\n#endif\nint main(){}" FIBER_HOST_AVX512F)
    check_cxx_source_compiles("#ifndef __AVX2__\n#error no\n#endif\nint main(){}" FIBER_HOST_AVX2)
    unset(CMAKE_REQUIRED_FLAGS)
    message(STATUS "fiber: host build (-march=native): AVX2=${FIBER_HOST_AVX2} AVX512F=${FIBER_HOST_AVX512F}")
  endif()
else()
  message(STATUS "fiber: portable build (no -march=native)")
endif()

if(FIBER_SANITIZE)
  target_compile_options(fiber_build_flags INTERFACE -fsanitize=${FIBER_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(fiber_build_flags INTERFACE -fsanitize=${FIBER_SANITIZE})
endif()

find_program(FIBER_CCACHE ccache)
if(FIBER_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${FIBER_CCACHE})
endif()
