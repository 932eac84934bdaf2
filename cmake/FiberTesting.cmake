# fiber_add_test(name SOURCES...): one doctest executable, test_<name>, whose test cases ctest
# discovers one by one (prefix "<name>/"). All test executables share one doctest main and one
# precompiled header, so each small test file compiles only what it instantiates.
find_package(doctest REQUIRED)

add_library(fiber_test_main OBJECT ${PROJECT_SOURCE_DIR}/tests/support/doctest_main.cpp)
target_link_libraries(fiber_test_main PUBLIC fiber::fiber fiber::build_flags doctest::doctest)
target_compile_definitions(fiber_test_main PUBLIC
  FIBER_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data"
  FIBER_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_include_directories(fiber_test_main PUBLIC ${PROJECT_SOURCE_DIR}/tests/support)
# Test programs are built at -O2 in Release (the library's users and our benchmarks keep -O3;
# FIBER_APP_OPT_FLAGS sets the tools' and examples' level): the tests check results, not speed,
# and -O2 builds them about 30 % faster (test_head_loss_parity.cpp: 160 s at -O3, 114 s at -O2),
# the largest share of CI on 2 cores.
# FIBER_TEST_OPT_FLAGS="" keeps the build type's own level.
set(FIBER_TEST_OPT_FLAGS "-O2" CACHE STRING "optimisation flags of the test programs in Release builds (GCC/Clang)")
fiber_release_optimisation(fiber_test_main PUBLIC "${FIBER_TEST_OPT_FLAGS}")

# The precompiled header lives in a target of its own (the main must not see it: it defines
# DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN before including doctest.h).
add_library(fiber_test_pch OBJECT ${PROJECT_SOURCE_DIR}/tests/support/pch_anchor.cpp)
target_link_libraries(fiber_test_pch PRIVATE fiber_test_main)
# It holds the whole library too: parsing <fiber/fiber.hpp> costs about 10 s of CPU in each of
# the ~120 test files, the largest share of the suite's build on 2 cores.
target_precompile_headers(fiber_test_pch PRIVATE
  <doctest/doctest.h> <vector> <string> <cmath> <cstdint> <memory> <functional> <fiber/fiber.hpp>)

# Each test program's files are compiled together, FIBER_TEST_UNITY_BATCH at a time (CMake's unity
# build): the files of one program instantiate the same models, ops and helpers, which a unity
# build compiles once instead of once per file. Measured on 2 cores: four files of tests/fine
# (the tiny fine-grained model in each) take 485 s of CPU one by one and 231 s together.
# FIBER_TEST_UNITY=OFF compiles file by file (a quicker rebuild after editing one test).
option(FIBER_TEST_UNITY "Compile each test program's files together (CMake unity build)" ON)
set(FIBER_TEST_UNITY_BATCH 8 CACHE STRING "test files per unity translation unit")

function(fiber_add_test name)
  set(target test_${name})
  add_executable(${target} ${ARGN})
  target_link_libraries(${target} PRIVATE fiber_test_main)
  target_precompile_headers(${target} REUSE_FROM fiber_test_pch)
  if(FIBER_TEST_UNITY)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE ${FIBER_TEST_UNITY_BATCH})
  endif()
  # One ctest test per TEST_CASE, listed after each build (see FiberDoctestDiscover.cmake).
  set(tests_file ${CMAKE_CURRENT_BINARY_DIR}/${target}_tests.cmake)
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND} -D EXE=$<TARGET_FILE:${target}> -D PREFIX=${name}/
            -D WORKDIR=${PROJECT_SOURCE_DIR} -D OUT=${tests_file}
            -P ${PROJECT_SOURCE_DIR}/cmake/FiberDoctestDiscover.cmake
    VERBATIM)
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/${target}_include.cmake
    "if(EXISTS \"${tests_file}\")\n  include(\"${tests_file}\")\nelse()\n"
    "  add_test(${target}_NOT_BUILT ${target}_NOT_BUILT)\nendif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${CMAKE_CURRENT_BINARY_DIR}/${target}_include.cmake)
endfunction()

# fiber_add_cli_test(group name ARGS <fiber arguments...> RC 0|fail [STDOUT re] [NOT_STDOUT re]
#                    [STDERR re] [SETUP fixtures...] [REQUIRES fixtures...]): test <group>/cli/<name>
# runs the `fiber` command line through tests/io/run_cli.cmake (exit status, stdout and stderr
# against regular expressions) from the source root. SETUP/REQUIRES order tests that write and
# read the same files (ctest fixtures). tools/ is added before tests/, but the binary's path is a
# generator expression so the order does not matter.
function(fiber_add_cli_test group name)
  cmake_parse_arguments(T "" "RC;STDOUT;NOT_STDOUT;STDERR" "ARGS;SETUP;REQUIRES" ${ARGN})
  string(REPLACE ";" "|" joined "${T_ARGS}")
  set(defs -D CLI=$<TARGET_FILE:fiber_cli> "-DARGS=${joined}" -D RC=${T_RC})
  foreach(stream STDOUT NOT_STDOUT STDERR)
    if(DEFINED T_${stream})
      list(APPEND defs "-D${stream}=${T_${stream}}")
    endif()
  endforeach()
  set(test ${group}/cli/${name})
  add_test(NAME ${test} COMMAND ${CMAKE_COMMAND} ${defs} -P ${PROJECT_SOURCE_DIR}/tests/io/run_cli.cmake
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  if(T_SETUP)
    set_tests_properties(${test} PROPERTIES FIXTURES_SETUP "${T_SETUP}")
  endif()
  if(T_REQUIRES)
    set_tests_properties(${test} PROPERTIES FIXTURES_REQUIRED "${T_REQUIRES}")
  endif()
endfunction()
