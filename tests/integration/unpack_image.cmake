gantry_test(unpack_image_root_test LABELS "integration;root"
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unpack_image/unpack_image_test.cc
  LIBS gantry_image gantry_testfixtures)
