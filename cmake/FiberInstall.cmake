# `cmake --install` gives a relocatable package: find_package(fiber CONFIG) + fiber::fiber.
include(CMakePackageConfigHelpers)
set(FIBER_CMAKE_DIR ${CMAKE_INSTALL_DATADIR}/cmake/fiber)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/fiber DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS fiber EXPORT fiberTargets)
install(EXPORT fiberTargets NAMESPACE fiber:: DESTINATION ${FIBER_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/fiberConfig.cmake.in
  ${PROJECT_BINARY_DIR}/fiberConfig.cmake INSTALL_DESTINATION ${FIBER_CMAKE_DIR})
# A header-only library is architecture independent.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/fiberConfigVersion.cmake
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/fiberConfig.cmake ${PROJECT_BINARY_DIR}/fiberConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cmake/FiberDependencies.cmake ${PROJECT_SOURCE_DIR}/cmake/Findspng.cmake
  DESTINATION ${FIBER_CMAKE_DIR})
configure_file(${PROJECT_SOURCE_DIR}/cmake/fiber.pc.in ${PROJECT_BINARY_DIR}/fiber.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/fiber.pc DESTINATION ${CMAKE_INSTALL_DATADIR}/pkgconfig)
