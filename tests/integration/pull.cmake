# Acceptance tests of `gantry pull`: the real CLI binary against the
# registry fixture (plain, TLS, htpasswd, token), the fault proxy and OCI
# layouts. Every suite is named Pull* so that `ctest -R Pull` selects them.
gantry_test(pull_integration_test LABELS integration
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/pull/pull_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/pull/cli_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/pull/faults_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/pull/concurrent_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/pull/errors_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/pull/layout_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/pull/layout_names_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/pull/unpack_progress_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/pull/images_test.cc
  LIBS gantry_registry gantry_store gantry_testfixtures)
add_dependencies(pull_integration_test gantry)
target_compile_definitions(pull_integration_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")
