gantry_test(fixtures_unit_test LABELS unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fixtures/image_builder_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/fixtures/process_test.cc
  LIBS gantry_testfixtures)
