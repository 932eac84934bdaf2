# Third-party dependencies, all from Debian packages (scripts/setup.sh installs them).
# The same calls run again in the installed package config (fiberConfig.cmake), so keep this
# file free of anything that only makes sense inside our own build tree.
include(CMakeFindDependencyMacro)
find_package(Threads REQUIRED)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(xtl REQUIRED)          # xsimd's CMake target links xtl
find_package(xsimd REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(PNG REQUIRED)
find_package(JPEG REQUIRED)
find_package(ZLIB REQUIRED)
find_package(spng REQUIRED)         # cmake/Findspng.cmake

# A CBLAS for large GEMMs: OpenBLAS preferred, any CBLAS accepted, none is fine (Eigen fallback).
set(FIBER_HAVE_CBLAS OFF)
if(NOT DEFINED FIBER_USE_BLAS OR FIBER_USE_BLAS)
  if(NOT DEFINED BLA_VENDOR)
    set(BLA_VENDOR OpenBLAS)
    find_package(BLAS QUIET)
    unset(BLA_VENDOR)
  endif()
  if(NOT BLAS_FOUND)
    find_package(BLAS QUIET)
  endif()
  find_path(FIBER_CBLAS_INCLUDE_DIR cblas.h)
  if(BLAS_FOUND AND FIBER_CBLAS_INCLUDE_DIR)
    set(FIBER_HAVE_CBLAS ON)
    include(CheckSymbolExists)
    set(CMAKE_REQUIRED_LIBRARIES ${BLAS_LIBRARIES})
    check_symbol_exists(openblas_set_num_threads "cblas.h" FIBER_HAVE_OPENBLAS_THREADS)
    unset(CMAKE_REQUIRED_LIBRARIES)
  endif()
endif()
