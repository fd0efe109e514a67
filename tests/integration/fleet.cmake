# The simulated fleet (docs/fleet.md, issue 16 item 5): 8 real
# `gantry serve` nodes on 127.0.0.x loopback addresses, each with its own
# store, peers from a file: source (and once from dns: through a private
# /etc/hosts in a mount namespace, which needs root), one docker-registry
# behind the fault proxy that counts blob GETs. The image is the small
# fixture image (busybox and a few files, 3 layers), not the /usr bench
# image, to keep the suite well under a minute.
gantry_test(fleet_root_test LABELS "integration;root"
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/pull/pull_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/mirror/mirror_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/fleet/fleet_test.cc
  LIBS gantry_fleet gantry_registry gantry_store gantry_testfixtures)
add_dependencies(fleet_root_test gantry)
target_compile_definitions(fleet_root_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")
