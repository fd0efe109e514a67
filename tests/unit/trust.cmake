# src/trust: policy.json and registries.d parsing, scope lookup, identity
# rules. Pure functions over text and temp files.
gantry_test(trust_unit_test LABELS unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/trust/identity_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/trust/policy_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/trust/registries_d_test.cc
  LIBS gantry_trust)

# Signature verification and the policy's decision, with keys and
# signatures made at test time by gpg, skopeo and openssl.
gantry_test(trust_verify_unit_test LABELS unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/trust/verify_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/trust/evaluate_test.cc
  LIBS gantry_trust gantry_testfixtures)
