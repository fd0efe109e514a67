# The hostile-layer corpus (testdata/hostile, fixtures/hostile_corpus.h)
# against the real `gantry pull oci:DIR:TAG`, which unpacks. Suites are
# named Hostile*. Device cases and overlay mounts need root; the others run
# (and the device cases skip) without.
gantry_test(hostile_root_test LABELS "integration;root"
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/pull/pull_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/hostile/hostile_test.cc
  LIBS gantry_snapshot gantry_testfixtures)
add_dependencies(hostile_root_test gantry)
target_compile_definitions(hostile_root_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")

# `gantry pull` against a misbehaving registry (fixtures/misbehaving_registry.h):
# cancel everywhere, bounded answers, the credential and redirect rules.
# Suites are named HostileRegistry*; no root needed.
gantry_test(hostile_registry_test LABELS integration
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/pull/pull_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/hostile/config_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/hostile/registry_test.cc
  LIBS gantry_store gantry_testfixtures)
add_dependencies(hostile_registry_test gantry)
target_compile_definitions(hostile_registry_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")
