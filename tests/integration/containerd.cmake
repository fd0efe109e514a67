# containerd (Debian's package) started by the test on its own root, state
# dir and socket, running the fixture image through containerd-shim-runc-v2
# with gantry-runtime (and runc, for comparison) as the runtime binary.
# Suite RuntimeContainerd; needs root, containerd, ctr and the shim.
gantry_test(containerd_root_test LABELS "integration;root"
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/containerd/containerd_test.cc
  LIBS gantry_common gantry_testfixtures)
add_dependencies(containerd_root_test gantry-runtime)
target_compile_definitions(containerd_root_test PRIVATE
  GANTRY_RUNTIME_BIN="$<TARGET_FILE:gantry-runtime>")
