# The short soak: bench/soak.sh 100 (concurrent pulls, removals, prunes,
# mounts and CRI calls through the fault proxy, with random kill -9s; then
# fsck and every tagged image pulled and mounted) with the built gantry and
# gantry-faultproxy, about two minutes. Suites are named Soak*. Needs root
# (loop and overlay mounts); docker-registry, skopeo, pigz, zstd and Python
# grpcio come from scripts/setup.sh.
gantry_test(soak_root_test LABELS "integration;root"
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/soak/soak_test.cc
  LIBS gantry_testfixtures)
add_dependencies(soak_root_test gantry gantry-faultproxy)
target_compile_definitions(soak_root_test PRIVATE
  GANTRY_BIN="$<TARGET_FILE:gantry>"
  GANTRY_FAULTPROXY_BIN="$<TARGET_FILE:gantry-faultproxy>")
