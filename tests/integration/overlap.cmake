# `gantry pull` applying each layer while it downloads (issue 21): cut,
# resumed, restarted and corrupt layer downloads through the fault proxy
# end with the reference unpack's layers, or fail with nothing committed.
# Suite PullOverlap. Root: the unpacked files keep their owners.
gantry_test(pull_overlap_root_test LABELS "integration;root"
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/pull/pull_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/pull/overlap_test.cc
  LIBS gantry_snapshot gantry_testfixtures)
add_dependencies(pull_overlap_root_test gantry)
target_compile_definitions(pull_overlap_root_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")
