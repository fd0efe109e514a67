# The snapshotter door against a real containerd 1.6 (Debian's), started by
# the test on its own root, state and socket with gantry as a proxy
# snapshotter ([proxy_plugins.gantry] pointing at the `gantry serve
# --snapshotter-listen` the test started), pulling the fixture image from
# the registry fixture through the counting fault proxy with `ctr` and
# `ctr-remote` (Debian's stargz-snapshotter). Suites CtrsnapContainerd,
# CtrsnapTree (layers equal containerd's overlayfs ones), CtrsnapCrash
# (kill -9 of gantry serve mid-pull), CtrsnapBadInput (error codes over
# the door's gRPC), CtrsnapCri (containerd's CRI plugin, configured by
# `gantry containerd-config`, driven by cri/cri_client.py with
# python3-grpcio), CtrPublish (gantry publish, pull --containerd) and
# Kubelet (split endpoints: ImageService on `gantry serve --containerd`,
# RuntimeService on containerd; issue 19); the shared containerd set-ups
# are ctrsnap_fixture.h and, with the CRI plugin, ctrcri_fixture.h.
# Needs root, containerd, ctr, ctr-remote, runc and the shim.
if(TARGET gantry_criproto)
  gantry_test(ctrsnap_root_test LABELS "integration;root"
    SOURCES
      ${CMAKE_CURRENT_LIST_DIR}/pull/pull_helpers.cc
      ${CMAKE_CURRENT_LIST_DIR}/cri/cri_helpers.cc
      ${CMAKE_CURRENT_LIST_DIR}/ctrsnap/ctrsnap_fixture.cc
      ${CMAKE_CURRENT_LIST_DIR}/ctrsnap/ctrsnap_test.cc
      ${CMAKE_CURRENT_LIST_DIR}/ctrsnap/ctrcri_fixture.cc
      ${CMAKE_CURRENT_LIST_DIR}/ctrsnap/ctrcri_test.cc
      ${CMAKE_CURRENT_LIST_DIR}/ctrsnap/kubelet_test.cc
      ${CMAKE_CURRENT_LIST_DIR}/ctrsnap/ctrsnap_rules_test.cc
      ${CMAKE_CURRENT_LIST_DIR}/ctrsnap/publish_test.cc
    LIBS gantry_criproto gantry_oci gantry_registry gantry_store gantry_testfixtures)
  add_dependencies(ctrsnap_root_test gantry)
  target_compile_definitions(ctrsnap_root_test PRIVATE
    GANTRY_BIN="$<TARGET_FILE:gantry>"
    GANTRY_CRI_PROTO_DIR="${PROJECT_SOURCE_DIR}/src/criimage/proto"
    GANTRY_CRI_PY_CLIENT="${CMAKE_CURRENT_LIST_DIR}/cri/cri_client.py")
endif()
