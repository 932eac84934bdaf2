# ctest test "consumer/installed_package": installs fiber from this build tree into a staging
# prefix, moves the whole prefix elsewhere (the package must be relocatable), then configures,
# builds and runs tests/consumer against the moved copy with find_package(fiber CONFIG).
add_test(NAME consumer/installed_package
  COMMAND ${CMAKE_COMMAND}
    -D BUILD_DIR=${PROJECT_BINARY_DIR}
    -D SOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR}/consumer
    -D WORK_DIR=${PROJECT_BINARY_DIR}/consumer-test
    -D CXX=${CMAKE_CXX_COMPILER}
    -P ${CMAKE_CURRENT_SOURCE_DIR}/consumer/run_consumer.cmake)
set_tests_properties(consumer/installed_package PROPERTIES TIMEOUT 600)
