# The OCI runtime's pure parts: config.json parsing and validation, paths,
# signals, container ids; and what the gantry-runtime binary links. No root
# needed.
gantry_test(runtime_unit_test LABELS unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/runtime/runtime_config_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/runtime/runtime_binary_test.cc
  LIBS gantry_ociruntime gantry_testfixtures)
add_dependencies(runtime_unit_test gantry-runtime)
target_compile_definitions(runtime_unit_test PRIVATE
  GANTRY_RUNTIME_BIN="$<TARGET_FILE:gantry-runtime>")
