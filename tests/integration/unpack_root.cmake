# Needs root (devices, chown, trusted.* xattrs, overlay mounts); every test
# skips with a reason otherwise.
gantry_test(unpack_root_test LABELS "root"
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/../unit/unpack/test_util.cc
    ${CMAKE_CURRENT_LIST_DIR}/unpack_root/unpack_root_test.cc
  LIBS gantry_unpack gantry_testfixtures)
