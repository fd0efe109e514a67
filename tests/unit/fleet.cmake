# The fleet's peer set (src/fleet/): source parsing, rendezvous homes,
# file: sources re-read on change, dns: of localhost, the allow list.
gantry_test(fleet_unit_test LABELS unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fleet/peer_set_test.cc
  LIBS gantry_fleet gantry_testfixtures)
