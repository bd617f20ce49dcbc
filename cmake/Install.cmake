# `cmake --install`: the programs (component `runtime`: tickwire-server, tickwire) and the C++
# client library as a package (component `development`): libtickwire_client.a with the
# protocol and generated protobuf libraries it links, its headers under include/tickwire/client/
# (installed by src/client/CMakeLists.txt), a CMake config package and a pkg-config file.
#
#   find_package(tickwire 0.1 CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE tickwire::client)
#
#   c++ -std=c++20 app.cc $(pkg-config --cflags --libs tickwire-client)
#
# The libraries are static: users link protobuf, OpenSSL and threads too (the config package
# and the .pc file say so). docs/CLIENT.md has the instructions; tests/client/install_test.cc
# installs into a temporary prefix and builds a program against it both ways.
include(CMakePackageConfigHelpers)

foreach(program tickwire-server tickwire)
  if(TARGET ${program})
    install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
  endif()
endforeach()

set(TICKWIRE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/tickwire)
install(TARGETS tickwire_client tickwire_protocol tickwire_proto
        EXPORT tickwireTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development)
install(EXPORT tickwireTargets
        NAMESPACE tickwire::
        DESTINATION ${TICKWIRE_CMAKE_DIR}
        COMPONENT development)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/tickwireConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/tickwireConfig.cmake
                              INSTALL_DESTINATION ${TICKWIRE_CMAKE_DIR})
# 0.x: a new minor version may break the API, so only the same minor version matches.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/tickwireConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION}
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/tickwireConfig.cmake
              ${PROJECT_BINARY_DIR}/tickwireConfigVersion.cmake
        DESTINATION ${TICKWIRE_CMAKE_DIR}
        COMPONENT development)

# pkg-config: relocatable (prefix from the .pc file's own place) unless the library directory
# was configured as an absolute path.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(TICKWIRE_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(TICKWIRE_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH _tickwire_pc_up "/root/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/root")
  string(REGEX REPLACE "/$" "" _tickwire_pc_up "${_tickwire_pc_up}")
  set(TICKWIRE_PC_PREFIX "\${pcfiledir}/${_tickwire_pc_up}")
  set(TICKWIRE_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(TICKWIRE_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(TICKWIRE_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/tickwire-client.pc.in
               ${PROJECT_BINARY_DIR}/tickwire-client.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/tickwire-client.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT development)
