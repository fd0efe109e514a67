# Publishing into containerd (src/ctrpublish/): the plan of what a
# publication writes, and the background publisher's retries, over a real store in a temporary root (no root, no
# containerd). Against containerd: tests/integration/ctrsnap.cmake.
if(TARGET gantry_ctrpublish)
  gantry_test(ctrpublish_unit_test LABELS unit
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/ctrpublish/plan_test.cc
            ${CMAKE_CURRENT_LIST_DIR}/ctrpublish/background_test.cc
            ${CMAKE_CURRENT_LIST_DIR}/ctrpublish/grpc_errc_test.cc
    LIBS gantry_ctrpublish gantry_testfixtures)
endif()
