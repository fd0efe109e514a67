# `gantry pull` of layers of many small files under a low RLIMIT_NOFILE
# (issue 13), and the raise of the soft limit at start-up. Suites are named
# OpenFiles*. The pulls need root (each store is a tmpfs); they skip
# without.
gantry_test(open_files_root_test LABELS "integration;root"
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/pull/pull_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/open_files/open_files_test.cc
  LIBS gantry_store gantry_testfixtures)
add_dependencies(open_files_root_test gantry)
target_compile_definitions(open_files_root_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")
