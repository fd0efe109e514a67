# Acceptance tests of the registry door (`gantry serve --registry-listen`,
# src/mirror/): the real gantry-serve on 127.0.0.1 and a free port over a
# store filled by `gantry pull` from the registry fixture; skopeo and a raw
# HTTP client as clients (suites Mirror*), and containerd pulling through
# it with a hosts.toml mirror (suite MirrorContainerd, needs root).
gantry_test(mirror_integration_test LABELS integration
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/pull/pull_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/mirror/mirror_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/mirror/door_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/mirror/pull_through_test.cc
  LIBS gantry_registry gantry_store gantry_testfixtures)
add_dependencies(mirror_integration_test gantry)
target_compile_definitions(mirror_integration_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")

gantry_test(mirror_containerd_root_test LABELS "integration;root"
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/pull/pull_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/mirror/mirror_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/mirror/containerd_mirror_test.cc
  LIBS gantry_registry gantry_store gantry_testfixtures)
add_dependencies(mirror_containerd_root_test gantry)
target_compile_definitions(mirror_containerd_root_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")
