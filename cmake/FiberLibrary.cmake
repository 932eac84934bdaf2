# The one INTERFACE target that host programs link: fiber::fiber.
add_library(fiber INTERFACE)
add_library(fiber::fiber ALIAS fiber)
target_include_directories(fiber INTERFACE
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_features(fiber INTERFACE cxx_std_20)
target_link_libraries(fiber INTERFACE
  Threads::Threads Eigen3::Eigen xsimd nlohmann_json::nlohmann_json
  spng::spng PNG::PNG JPEG::JPEG ZLIB::ZLIB)
if(FIBER_HAVE_CBLAS)
  target_link_libraries(fiber INTERFACE BLAS::BLAS)
  target_compile_definitions(fiber INTERFACE FIBER_HAVE_CBLAS=1)
  if(FIBER_HAVE_OPENBLAS_THREADS)
    target_compile_definitions(fiber INTERFACE FIBER_HAVE_OPENBLAS_THREADS=1)
  endif()
endif()
