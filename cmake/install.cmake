# What `cmake --install` puts where, the CMake package and pkg-config files for consumers, and
# CPack's Debian package. Included from the top-level CMakeLists.txt when LOWBIT_INSTALL is on.
include(CMakePackageConfigHelpers)

set(LOWBIT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/lowbit)

# Public headers: include/lowbit/*.h and the generated version.h.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/lowbit ${PROJECT_BINARY_DIR}/include/lowbit
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT development FILES_MATCHING PATTERN "*.h")

# Each part as its own export set, so that finding the package loads (and finds the dependencies
# of) only the parts asked for. The static report library is not installed: its PLplot and libpng
# link dependencies come from pkg-config, which a CMake package cannot name portably.
install(TARGETS lowbit_engine lowbit_engine_shared EXPORT lowbit_engine
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT development)
install(TARGETS lowbit lowbit_shared EXPORT lowbit_lowbit
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT development)
set(LOWBIT_EXPORTS engine lowbit)
if(TARGET lowbit_report_shared)
  install(TARGETS lowbit_report_shared EXPORT lowbit_report
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT development)
  list(APPEND LOWBIT_EXPORTS report)
endif()
foreach(part ${LOWBIT_EXPORTS})
  install(EXPORT lowbit_${part} NAMESPACE lowbit:: FILE lowbit-${part}-targets.cmake
    DESTINATION ${LOWBIT_CMAKE_DIR} COMPONENT development)
endforeach()

if(TARGET lowbit_cli)
  install(TARGETS lowbit_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
endif()
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT docs)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT docs)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/lowbitConfig.cmake.in
  ${PROJECT_BINARY_DIR}/lowbitConfig.cmake INSTALL_DESTINATION ${LOWBIT_CMAKE_DIR})
# 0.x: a minor version may change the API, so only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/lowbitConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/lowbitConfig.cmake ${PROJECT_BINARY_DIR}/lowbitConfigVersion.cmake
  DESTINATION ${LOWBIT_CMAKE_DIR} COMPONENT development)

# pkg-config: lowbit-engine (the engine and C API) and lowbit (everything but the report library).
# Paths are relative to the .pc file, so a package relocated by CPack stays right.
file(RELATIVE_PATH LOWBIT_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
foreach(pc lowbit lowbit-engine)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/${pc}.pc.in ${PROJECT_BINARY_DIR}/${pc}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/${pc}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
    COMPONENT development)
endforeach()

# `cpack -G DEB` in the build folder: one package with the command, the libraries, headers,
# CMake and pkg-config files, the Python module and the docs. Library dependencies are read from
# the binaries (dpkg-shlibdeps). Build with -DLOWBIT_NATIVE=OFF for a package other CPUs can run.
set(CPACK_PACKAGE_NAME lowbit)
set(CPACK_PACKAGE_VENDOR "lowbit")
set(CPACK_PACKAGE_CONTACT "lowbit maintainers <lowbit@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The data the command falls back to without MNIST (docs/data.md), and what the Python module
# imports at run time.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "dataset-fashion-mnist, python3, python3-numpy")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "nlohmann-json3-dev, zlib1g-dev, libdnnl-dev")
set(CPACK_PACKAGE_DESCRIPTION "The lowbit command (train, quantize, eval, sweep, inspect, ...), \
the libraries for programs that embed the integer engine (lowbit::engine, C API in lowbit/c_api.h) \
or train and quantize (lowbit::lowbit), with their CMake and pkg-config files, and the Python module.")
if(LOWBIT_NATIVE)
  string(APPEND CPACK_PACKAGE_DESCRIPTION " Built with -march=native: it runs only on CPUs with the \
instruction sets of the machine that built it.")
endif()
include(CPack)
