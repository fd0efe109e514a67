# contrib/kubernetes/ read by kubectl without a cluster (`kubectl label
# --local`, which decodes every object into its typed API struct) and the
# pieces checked against each other and against `gantry serve --help`; the
# init container's script run against a stand-in /etc/containerd (suite
# KubernetesManifests).
gantry_test(kubernetes_manifests_test LABELS integration
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/kubernetes/manifests_test.cc
  LIBS gantry_common gantry_testfixtures)
add_dependencies(kubernetes_manifests_test gantry)
target_compile_definitions(kubernetes_manifests_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")
