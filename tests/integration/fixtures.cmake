gantry_test(fixtures_integration_test LABELS integration
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fixtures/image_layout_test.cc
  LIBS gantry_testfixtures)
if(TARGET gantry-mkimage)
  add_dependencies(fixtures_integration_test gantry-mkimage)
  target_compile_definitions(fixtures_integration_test PRIVATE
    GANTRY_MKIMAGE="$<TARGET_FILE:gantry-mkimage>")
endif()
