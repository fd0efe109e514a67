gantry_test(unpack_unit_test LABELS unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/unpack/test_util.cc
    ${CMAKE_CURRENT_LIST_DIR}/unpack/decompress_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/unpack/path_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/unpack/apply_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/unpack/hostile_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/unpack/whiteout_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/unpack/fixture_image_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/unpack/memory_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/unpack/open_files_test.cc
  LIBS gantry_unpack gantry_testfixtures)
