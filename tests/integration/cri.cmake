# Acceptance tests of `gantry serve` (the CRI ImageService over gRPC): the
# real binary on a Unix socket in the test's directory, driven by the C++
# stub generated from our proto and by Python grpcio with stubs generated
# at test time (Debian's python3-grpcio and python3-grpc-tools), pulling
# from the registry fixture through the fault proxy; with --metrics-listen,
# scraped over HTTP and checked by promtool. Suites are named Cri*.
if(TARGET gantry_criproto)
  gantry_test(cri_integration_test LABELS integration
    SOURCES
      ${CMAKE_CURRENT_LIST_DIR}/pull/pull_helpers.cc
      ${CMAKE_CURRENT_LIST_DIR}/cri/cri_helpers.cc
      ${CMAKE_CURRENT_LIST_DIR}/cri/cri_rpc_test.cc
      ${CMAKE_CURRENT_LIST_DIR}/cri/cri_pull_test.cc
      ${CMAKE_CURRENT_LIST_DIR}/cri/cri_serve_test.cc
      ${CMAKE_CURRENT_LIST_DIR}/cri/cri_metrics_test.cc
      ${CMAKE_CURRENT_LIST_DIR}/cri/cri_prepull_test.cc
      ${CMAKE_CURRENT_LIST_DIR}/mirror/mirror_helpers.cc
      ${CMAKE_CURRENT_LIST_DIR}/hostile/config_helpers.cc
    LIBS gantry_criproto gantry_registry gantry_store gantry_testfixtures)
  add_dependencies(cri_integration_test gantry)
  target_compile_definitions(cri_integration_test PRIVATE
    GANTRY_BIN="$<TARGET_FILE:gantry>"
    GANTRY_CRI_PROTO_DIR="${PROJECT_SOURCE_DIR}/src/criimage/proto"
    GANTRY_CRI_PY_CLIENT="${CMAKE_CURRENT_LIST_DIR}/cri/cri_client.py"
    GANTRY_TEST_VERSION="${GANTRY_VERSION}"
    GANTRY_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()
