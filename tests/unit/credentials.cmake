gantry_test(credentials_unit_test LABELS unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/credentials/credentials_test.cc
  LIBS gantry_registry)
