# The registry door's request logic (src/mirror/): routes, names, ranges,
# Accept, and the handler's answers from a real store in a temp dir. No
# HTTP, no network; tests/integration/mirror.cmake has the real server.
gantry_test(mirror_unit_test LABELS unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/mirror/distribution_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/mirror/handler_test.cc
  LIBS gantry_mirror gantry_testfixtures)
