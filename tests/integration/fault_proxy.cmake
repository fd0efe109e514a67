gantry_test(fault_proxy_integration_test LABELS integration
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fault_proxy/fault_proxy_test.cc
  LIBS gantry_testfixtures)
