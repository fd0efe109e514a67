gantry_test(image_unit_test LABELS unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/image/image_record_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/image/max_layers_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/image/prepull_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/image/pull_flights_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/image/pull_metrics_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/image/pull_progress_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/image/space_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/image/trust_gate_test.cc
  LIBS gantry_image)
