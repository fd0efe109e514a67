# MakeSpec, user resolution and the safe reading of an image's /etc/passwd
# and /etc/group (src/ociruntime/spec*). Suites are named Spec*.
gantry_test(ociruntime_spec_unit_test LABELS unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/ociruntime/spec_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/ociruntime/spec_user_test.cc
  LIBS gantry_ociruntime)
