# Acceptance tests of `gantry load` and the docker-archive:/oci-archive: pull
# sources: archives written by skopeo from the registry fixture, loaded and
# compared with a registry pull of the same image; hostile archives. Every
# suite is named Load* so that `ctest -R Load` selects them.
gantry_test(load_integration_test LABELS integration
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/pull/pull_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/load/load_test.cc
  LIBS gantry_archive gantry_registry gantry_store gantry_testfixtures)
add_dependencies(load_integration_test gantry)
target_compile_definitions(load_integration_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")
