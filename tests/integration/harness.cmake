gantry_test(harness_integration_test LABELS integration
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/harness_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/harness_tools_test.cc
  LIBS gantry_testfixtures)
