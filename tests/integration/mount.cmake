# `gantry mount` of images with many layers (200, 500 = overlayfs's limit,
# 501) pulled from an OCI layout. Needs root (overlay mounts); every test
# skips with a reason otherwise.
gantry_test(mount_root_test LABELS root
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/mount/mount_layers_test.cc
  LIBS gantry_snapshot gantry_testfixtures)
add_dependencies(mount_root_test gantry)
target_compile_definitions(mount_root_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")
