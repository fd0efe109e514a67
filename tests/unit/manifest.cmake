gantry_test(manifest_unit_test LABELS unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/manifest/manifest_test.cc
  LIBS gantry_registry)
