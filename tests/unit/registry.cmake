gantry_test(registry_unit_test LABELS unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/registry/hosts_toml_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/registry/layering_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/registry/reference_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/registry/source_test.cc
  LIBS gantry_registry gantry_testfixtures)
