# Acceptance tests of `gantry push` and `gantry tag`: the real CLI binary
# (and image::CopyImage into registry::OpenRegistryDestination) against the
# registry fixture (plain, TLS, htpasswd, token) and the fault proxy, with
# skopeo reading back what was pushed. Suites are named Push* and Tag*.
gantry_test(push_integration_test LABELS integration
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/pull/pull_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/push/push_test.cc
  LIBS gantry_image gantry_registry gantry_store gantry_testfixtures)
add_dependencies(push_integration_test gantry)
target_compile_definitions(push_integration_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")
