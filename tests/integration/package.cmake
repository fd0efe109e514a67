# The generated man pages and completions against the command line, and the
# global options after a subcommand (cli_docs_test, suites CliDocs and
# GlobalFlags); the Debian package built by cpack from this tree, installed
# into a fresh root and run there (package_test, suite Package: root, for
# mount and chroot).
gantry_test(cli_docs_test LABELS "integration"
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/package/cli_docs_test.cc
  LIBS gantry_common gantry_testfixtures)
add_dependencies(cli_docs_test gantry docs)

# Not in a sanitizer build: its executables need the sanitizer runtimes,
# which a package does not depend on, and ASan cannot run in the test's
# chroot (no /proc: it cannot find its own stack and reports false
# overflows). The plain build of scripts/test.sh runs it.
if(NOT GANTRY_SANITIZE)
  gantry_test(package_test LABELS "integration;root"
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/package/package_test.cc
    LIBS gantry_common gantry_testfixtures)
  add_dependencies(package_test gantry gantry-runtime docs)
  if(TARGET gantry-serve)
    add_dependencies(package_test gantry-serve)
  endif()
  # The libraries gantry dlopen()s (cmake/package.cmake), "a:b:c".
  list(JOIN GANTRY_LAZY_LIBRARIES ":" lazy_libraries)
  target_compile_definitions(package_test PRIVATE GANTRY_CPACK="${CMAKE_CPACK_COMMAND}"
    GANTRY_LAZY_LIBRARIES="${lazy_libraries}")
endif()
