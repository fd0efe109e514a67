# The fleet's peer set (src/fleet/): source parsing, rendezvous homes,
# file: sources re-read on change, dns: of localhost, the allow list;
# manifests from peers (by digest, offline tags) against small HTTP servers.
gantry_test(fleet_unit_test LABELS unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/fleet/peer_set_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/fleet/peer_manifest_test.cc
  LIBS gantry_fleet gantry_testfixtures)
