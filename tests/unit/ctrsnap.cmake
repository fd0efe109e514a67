# The snapshotter door's logic (src/ctrsnap/): containerd's filter syntax,
# its key names, and the door over a real native snapshotter and
# metadata.db in a temporary root (no root, no containerd).
gantry_test(ctrsnap_unit_test LABELS unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/ctrsnap/filter_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/ctrsnap/names_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/ctrsnap/door_test.cc
  LIBS gantry_ctrsnap gantry_testfixtures)
