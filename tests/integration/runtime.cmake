# gantry-runtime end to end, against runc and crun: busybox bundles built in
# the test, observed from inside the container; lifecycle, state JSON, kill,
# delete, bad bundles, logs, console socket; exec, terminals, pause/resume,
# update, hooks, seccomp; parity with runc on the same bundle and what the
# host cannot enforce. Suites are named Runtime*.
# Needs root and a static busybox; every test skips with the reason
# otherwise.
gantry_test(runtime_root_test LABELS "integration;root"
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/runtime/runtime_helpers.cc
    ${CMAKE_CURRENT_LIST_DIR}/runtime/runtime_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/runtime/runtime_lifecycle_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/runtime/runtime_exec_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/runtime/runtime_hooks_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/runtime/runtime_seccomp_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/runtime/runtime_parity_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/runtime/runtime_refuse_test.cc
  LIBS gantry_common gantry_ociruntime gantry_bundle gantry_testfixtures)
add_dependencies(runtime_root_test gantry-runtime gantry)
target_compile_definitions(runtime_root_test PRIVATE
  GANTRY_RUNTIME_BIN="$<TARGET_FILE:gantry-runtime>"
  GANTRY_BIN="$<TARGET_FILE:gantry>")
