# Garbage collection, disk usage and the prune/df/snapshot/mount commands on
# a real store (two images sharing layers, pulled from an OCI layout, no
# registry). Needs root (snapshot ownership, overlay and bind mounts); every
# test skips with a reason otherwise.
gantry_test(gc_root_test LABELS root
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/gc/gc_store.cc
    ${CMAKE_CURRENT_LIST_DIR}/gc/gc_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/gc/gc_usage_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/gc/gc_cli_test.cc
  LIBS gantry_upkeep gantry_testfixtures)
target_include_directories(gc_root_test PRIVATE ${CMAKE_CURRENT_LIST_DIR})
add_dependencies(gc_root_test gantry)
target_compile_definitions(gc_root_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")
