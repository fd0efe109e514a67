# MakeSpec, user resolution and the safe reading of an image's /etc/passwd
# and /etc/group (src/bundle/spec*, and the formats: common/userdb.h).
# Suites are named Spec*.
gantry_test(bundle_unit_test LABELS unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/bundle/spec_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/bundle/spec_user_test.cc
  LIBS gantry_bundle)
