gantry_test(registry_client_unit_test LABELS unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/registry_client/auth_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/registry_client/hosts_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/registry_client/http_retry_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/registry_client/redirect_address_test.cc
  LIBS gantry_registry)
