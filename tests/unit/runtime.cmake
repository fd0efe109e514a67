# The OCI runtime's pure parts: config.json parsing and validation, paths,
# signals, container ids. No root needed.
gantry_test(runtime_unit_test LABELS unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/runtime/runtime_config_test.cc
  LIBS gantry_ociruntime_rt)
