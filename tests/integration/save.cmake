# Acceptance tests of `gantry save` and `gantry copy`: the real CLI binary
# against the registry fixture, with skopeo and umoci reading what it
# writes. Every suite is named Save* so that `ctest -R Save` selects them.
gantry_test(save_integration_test LABELS integration
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/pull/pull_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/save/save_test.cc
  LIBS gantry_registry gantry_store gantry_testfixtures)
add_dependencies(save_integration_test gantry)
target_compile_definitions(save_integration_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")
