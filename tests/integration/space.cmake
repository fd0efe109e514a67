# Disk space and `gantry pull` (the real binary) with the store on a small
# tmpfs: the space check, and disks that fill during download or unpack.
# Suites are named Space*. Needs root (tmpfs and overlay mounts) and the
# registry fixture's peers (docker-registry, skopeo).
gantry_test(space_root_test LABELS "integration;root"
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/pull/pull_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/cri/cri_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/space/space_test.cc
  LIBS gantry_criproto gantry_snapshot gantry_testfixtures)
add_dependencies(space_root_test gantry)
target_compile_definitions(space_root_test PRIVATE
  GANTRY_BIN="$<TARGET_FILE:gantry>"
  GANTRY_CRI_PROTO_DIR="${PROJECT_SOURCE_DIR}/src/criimage/proto"
  GANTRY_CRI_PY_CLIENT="${CMAKE_CURRENT_LIST_DIR}/cri/cri_client.py")
