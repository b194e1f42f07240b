# fe_datakey_add_adapter(NAME SOURCES ...): an adapter is a small static
# library (position independent, so it links into PIE executables) with one
# C header NAME.h, installed with a pkg-config file NAME.pc that pulls in
# libfe_datakey. A PostgreSQL Makefile links it with
#   $(shell $(PKG_CONFIG) --libs NAME)
function(fe_datakey_add_adapter name)
  add_library(${name} STATIC ${ARGN})
  target_include_directories(${name} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${name} PUBLIC fe_datakey)
  install(TARGETS ${name} EXPORT fe_datakeyTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/${name}.h
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fe_datakey)
  set(FE_ADAPTER_NAME ${name})
  configure_file(${PROJECT_SOURCE_DIR}/cmake/adapter.pc.in
                 ${CMAKE_CURRENT_BINARY_DIR}/${name}.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/${name}.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endfunction()
