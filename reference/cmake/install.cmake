# What `cmake --install` puts under the prefix (GNUInstallDirs layout):
#   include/squall/*.h                     the public headers (reference/include/squall)
#   include/squall/detail/*.h              what public headers include but is not API
#   lib/libsquall.a (or .so with BUILD_SHARED_LIBS=ON)
#   lib/cmake/squall/                      squallConfig.cmake, its version file and the
#                                          exported target squall::squall
#   lib/pkgconfig/squall.pc                for pkg-config users
#   bin/squall-*                           the contract programs, probes and tools
#   share/squall/request_path.ld           the request path's layout, for a program's link
# Every file is relocatable: the package and squall.pc find the prefix from where they
# are, so `cmake --install BUILD --prefix ANY` works without configuring again.
# Implementation-only headers belong in src/ (next to their .cc), never in include/;
# a header that public headers must include but users should not is in include/squall/detail/.
include(CMakePackageConfigHelpers)

set(SQUALL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/squall)

install(TARGETS squall EXPORT squallTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/include/squall
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(EXPORT squallTargets NAMESPACE squall:: DESTINATION ${SQUALL_CMAKE_DIR})

# The programs find a shared libsquall next to them (bin/../lib) wherever the prefix is.
set_target_properties(${SQUALL_PROGRAMS} PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
install(TARGETS ${SQUALL_PROGRAMS} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The request path's layout (request_path.ld, see CMakeLists.txt): the installed library keeps
# its per-function sections, so a program linked with the script (-Wl,-T,FILE; the package
# names it squall_REQUEST_PATH_SCRIPT) lays the library's path out as Squall's own programs do.
set(SQUALL_DATA_DIR ${CMAKE_INSTALL_DATADIR}/squall)
install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/request_path.ld DESTINATION ${SQUALL_DATA_DIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/squallConfig.cmake.in
                              ${CMAKE_CURRENT_BINARY_DIR}/squallConfig.cmake
                              INSTALL_DESTINATION ${SQUALL_CMAKE_DIR}
                              PATH_VARS SQUALL_DATA_DIR)
# 0.x: a minor version may break the interface, so only the same minor is compatible.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/squallConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/squallConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/squallConfigVersion.cmake
        DESTINATION ${SQUALL_CMAKE_DIR})

# squall.pc. The public headers include fmt and OpenSSL, so those are always Requires.
# A shared libsquall carries its own dependencies on RE2, zlib and pthreads: they are
# needed only to link statically (pkg-config --static), hence Requires.private and
# Libs.private. A static libsquall is all that is installed then, so every link needs
# them and they are plain Requires and Libs.
file(RELATIVE_PATH SQUALL_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
if(BUILD_SHARED_LIBS)
  set(SQUALL_PC_REQUIRES "fmt openssl")
  set(SQUALL_PC_REQUIRES_PRIVATE "re2 zlib")
  set(SQUALL_PC_LIBS "-lsquall")
  set(SQUALL_PC_LIBS_PRIVATE "-pthread")
else()
  set(SQUALL_PC_REQUIRES "fmt openssl re2 zlib")
  set(SQUALL_PC_REQUIRES_PRIVATE "")
  set(SQUALL_PC_LIBS "-lsquall -pthread")
  set(SQUALL_PC_LIBS_PRIVATE "")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/squall.pc.in ${CMAKE_CURRENT_BINARY_DIR}/squall.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/squall.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The install checked from outside (ci/install-test.sh: a temporary prefix, an outside
# project built with find_package and with pkg-config). Not in sanitizer or fuzzing
# builds: their library links only with their instrumentation flags.
if(NOT SQUALL_SANITIZE AND NOT SQUALL_TSAN AND NOT SQUALL_FUZZ)
  add_test(NAME install_outside_project COMMAND ${PROJECT_SOURCE_DIR}/ci/install-test.sh ${PROJECT_BINARY_DIR})
  set_tests_properties(install_outside_project PROPERTIES TIMEOUT 300
                       ENVIRONMENT SQUALL_INSTALL_TEST_SKIP_BUILD=1)
endif()
