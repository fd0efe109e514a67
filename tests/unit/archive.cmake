gantry_test(archive_unit_test LABELS unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/archive/archive_contents_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/archive/tar_index_test.cc
  LIBS gantry_archive gantry_testfixtures)
