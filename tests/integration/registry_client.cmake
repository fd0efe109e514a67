gantry_test(registry_client_integration_test LABELS integration
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/registry_client/client_test.cc
  LIBS gantry_registry gantry_testfixtures)
