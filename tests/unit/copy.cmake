gantry_test(copy_unit_test LABELS unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/copy/copy_test.cc ${CMAKE_CURRENT_LIST_DIR}/copy/transport_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/copy/platform_manifest_test.cc
  LIBS gantry_image gantry_archive gantry_testfixtures)
