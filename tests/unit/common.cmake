gantry_test(common_unit_test LABELS unit
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/common/bounded_json_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/common/error_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/common/digest_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/common/fs_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/common/log_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/common/row_format_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/common/task_group_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/common/time_text_test.cc
  LIBS gantry_common)
