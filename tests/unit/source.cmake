# Facts about the source tree itself: every C++ file is formatted as
# .clang-format says (clang-format-14). Suite FormatCheck.
gantry_test(source_unit_test LABELS unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/source/format_test.cc
  LIBS gantry_common gantry_testfixtures)
