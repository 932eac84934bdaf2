# Finds libspng (Debian: libspng-dev), which ships a pkg-config file but no CMake package.
# Defines the imported target spng::spng.
find_path(SPNG_INCLUDE_DIR spng.h)
find_library(SPNG_LIBRARY NAMES spng)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(spng REQUIRED_VARS SPNG_LIBRARY SPNG_INCLUDE_DIR)
if(spng_FOUND AND NOT TARGET spng::spng)
  add_library(spng::spng UNKNOWN IMPORTED)
  set_target_properties(spng::spng PROPERTIES
    IMPORTED_LOCATION "${SPNG_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${SPNG_INCLUDE_DIR}")
endif()
mark_as_advanced(SPNG_INCLUDE_DIR SPNG_LIBRARY)
