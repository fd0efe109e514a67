gantry_test(snapshot_root_test LABELS root
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/snapshot/snapshotter_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/snapshot/mount_test.cc
  LIBS gantry_snapshot gantry_testfixtures)
