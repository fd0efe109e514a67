# gantry fsck (upkeep/fsck.h) on a real store built by the garbage
# collection fixture (gc/gc_store.h), and the `gantry fsck` command. Needs
# root (snapshots keep ownership; the mount checks mount tmpfs and
# overlay); every test skips with a reason otherwise.
gantry_test(fsck_root_test LABELS root
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/gc/gc_store.cc
    ${CMAKE_CURRENT_LIST_DIR}/fsck/fsck_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/fsck/fsck_cli_test.cc
  LIBS gantry_upkeep gantry_testfixtures)
target_include_directories(fsck_root_test PRIVATE ${CMAKE_CURRENT_LIST_DIR})
add_dependencies(fsck_root_test gantry)
target_compile_definitions(fsck_root_test PRIVATE GANTRY_BIN="$<TARGET_FILE:gantry>")
