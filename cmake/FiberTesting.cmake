# fiber_add_test(name SOURCES...): one doctest executable, test_<name>, whose test cases ctest
# discovers one by one (prefix "<name>/"). All test executables share one doctest main and one
# precompiled header, so each small test file compiles only what it instantiates.
find_package(doctest REQUIRED)
include(${doctest_DIR}/doctest.cmake)

add_library(fiber_test_main OBJECT ${PROJECT_SOURCE_DIR}/tests/support/doctest_main.cpp)
# The main defines DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN before doctest.h: no PCH for it.
set_source_files_properties(${PROJECT_SOURCE_DIR}/tests/support/doctest_main.cpp
  PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
target_link_libraries(fiber_test_main PUBLIC fiber::fiber fiber::build_flags doctest::doctest)
target_compile_definitions(fiber_test_main PUBLIC
  FIBER_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data"
  FIBER_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_include_directories(fiber_test_main PUBLIC ${PROJECT_SOURCE_DIR}/tests/support)
target_precompile_headers(fiber_test_main PUBLIC
  <doctest/doctest.h> <vector> <string> <cmath> <cstdint> <memory> <functional>)

function(fiber_add_test name)
  set(target test_${name})
  add_executable(${target} ${ARGN})
  target_link_libraries(${target} PRIVATE fiber_test_main)
  target_precompile_headers(${target} REUSE_FROM fiber_test_main)
  doctest_discover_tests(${target} TEST_PREFIX "${name}/" WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
endfunction()
