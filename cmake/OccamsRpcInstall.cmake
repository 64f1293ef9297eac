include(CMakePackageConfigHelpers)
install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
set(occams_rpc_installed_targets occams_rpc occams_rpc_compiled)
if(OCCAMS_RPC_TLS)
  list(APPEND occams_rpc_installed_targets occams_rpc_tls_headers occams_rpc_tls)
endif()
set(OCCAMS_RPC_NAMING OFF)
if(TARGET occams_rpc_naming)
  set(OCCAMS_RPC_NAMING ON)
  list(APPEND occams_rpc_installed_targets occams_rpc_naming_headers occams_rpc_naming)
endif()
install(TARGETS ${occams_rpc_installed_targets} EXPORT occams_rpc-targets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT occams_rpc-targets NAMESPACE occams_rpc::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/occams_rpc)
# The installed compiled library is built in this tree; its source travels too so that
# consumers can see what was compiled.
set(OCCAMS_RPC_MSGPACK_HINT "${msgpack_DIR}")
configure_package_config_file(cmake/occams_rpc-config.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/occams_rpc-config.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/occams_rpc)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/occams_rpc-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/occams_rpc-config.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/occams_rpc-config-version.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/occams_rpc)
