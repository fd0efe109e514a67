# `gantry bundle` and `gantry bundle rm` end to end: the fixture image from
# an OCI layout, bundles run unchanged under runc and crun. Needs root
# (mounts, runtimes); every test skips with a reason otherwise. Suites are
# named Bundle*.
gantry_test(bundle_root_test LABELS "integration;root"
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/bundle/bundle_test.cc
  LIBS gantry_bundle gantry_testfixtures)
add_dependencies(bundle_root_test gantry)
target_compile_definitions(bundle_root_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")
