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

# The signature policy cross-checked against skopeo: every case (policy,
# image) is run through `skopeo copy --policy` and `gantry pull
# --signature-policy` (or `gantry load`) against the registry fixture
# behind the fault proxy, with GPG keys, skopeo-made signatures and
# openssl-made sigstore attachments made at test time. Suites are named
# TrustCrosscheck*.
gantry_test(trust_crosscheck_test LABELS integration
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/pull/pull_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/trust/crosscheck_test.cc
  LIBS gantry_registry gantry_store gantry_testfixtures)
add_dependencies(trust_crosscheck_test gantry)
target_compile_definitions(trust_crosscheck_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")
