gantry_test(snapshot_root_test LABELS root
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/snapshot/snapshotter_test.cc
  LIBS gantry_snapshot)
