# Crash safety of `gantry pull` (the real binary): SIGKILLed at random
# points then pulled again, and `gantry prune` racing pulls. Suites are
# named Kill*. Needs root (overlay mounts of the unpacked image) and the
# registry fixture's peers (docker-registry, skopeo); skips otherwise.
gantry_test(kill_root_test LABELS "integration;root"
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/pull/pull_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/kill/kill_test.cc
  LIBS gantry_snapshot gantry_testfixtures)
add_dependencies(kill_root_test gantry)
target_compile_definitions(kill_root_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")
