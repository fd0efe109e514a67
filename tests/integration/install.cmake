# `cmake --install` of this build tree into a temporary prefix: the three
# executables, the systemd units and the docs land where they should, and
# the installed gantry runs and execs the installed gantry-serve. Suite
# Install*. No root needed.
gantry_test(install_test LABELS "integration"
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/install/install_test.cc
  LIBS gantry_common gantry_testfixtures)
add_dependencies(install_test gantry gantry-runtime)
if(TARGET gantry-serve)
  add_dependencies(install_test gantry-serve)
endif()
target_compile_definitions(install_test PRIVATE GANTRY_CMAKE="${CMAKE_COMMAND}")
add_dependencies(install_test docs)
