# The signature policy enforced through the real CLI (suites TrustGate*):
# registry pulls refused after the manifest and before any blob (fault
# proxy log), local sources looked up in their own transports, load,
# copy, inspect --signatures; one-line refusals, nothing recorded.
gantry_test(trust_gate_test LABELS integration
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/pull/pull_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/trust/trust_gate_test.cc
  LIBS gantry_registry gantry_store gantry_testfixtures)
add_dependencies(trust_gate_test gantry)
target_compile_definitions(trust_gate_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")
