gantry_test(store_unit_test LABELS unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/store/content_store_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/store/metadata_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/store/lease_hold_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/store/unnamed_ingest_test.cc
  LIBS gantry_store gantry_testfixtures)
