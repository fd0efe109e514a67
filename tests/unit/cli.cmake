# The `gantry` executable itself: `gantry serve` execs gantry-serve from
# beside it, and gantry links no gRPC. Runs copies of the build tree's gantry.
gantry_test(cli_unit_test LABELS unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli/serve_exec_test.cc
  LIBS gantry_testfixtures)
add_dependencies(cli_unit_test gantry)
target_compile_definitions(cli_unit_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")
