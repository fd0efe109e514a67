# Man pages and shell completions (target `docs`, built by default): written
# at build time by the built gantry from its own command line (`gantry
# __generate`, src/cli/cmd_generate.cc), so every registered command has
# its page and completion with no list to keep. The pages are gzipped as
# Debian wants them (-n: no name or time stamp, so a rebuild is identical).
#   build/docs/man1/gantry.1.gz, gantry-CMD[-SUB].1.gz, gantry-runtime.1.gz
#   build/docs/completions/gantry (bash), build/docs/completions/_gantry (zsh)
# Installed to share/man/man1, share/bash-completion/completions/gantry and
# share/zsh/vendor-completions/_gantry.
# Not in the fuzz build (scripts/fuzz.sh), whose instrumented gantry is not
# meant to run.
if(NOT TARGET gantry OR GANTRY_FUZZ)
  return()
endif()
set(GANTRY_DOCS_DIR ${PROJECT_BINARY_DIR}/docs)
add_custom_command(
  OUTPUT ${GANTRY_DOCS_DIR}/docs.stamp
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${GANTRY_DOCS_DIR}/man1 ${GANTRY_DOCS_DIR}/completions
  COMMAND gantry __generate man ${GANTRY_DOCS_DIR}/man1
  COMMAND sh -c "gzip -9n '${GANTRY_DOCS_DIR}/man1/'*.1"
  COMMAND gantry __generate bash ${GANTRY_DOCS_DIR}/completions
  COMMAND gantry __generate zsh ${GANTRY_DOCS_DIR}/completions
  COMMAND ${CMAKE_COMMAND} -E touch ${GANTRY_DOCS_DIR}/docs.stamp
  DEPENDS gantry
  COMMENT "Generating man pages and shell completions"
  VERBATIM)
add_custom_target(docs ALL DEPENDS ${GANTRY_DOCS_DIR}/docs.stamp)

install(DIRECTORY ${GANTRY_DOCS_DIR}/man1/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${GANTRY_DOCS_DIR}/completions/gantry
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions)
install(FILES ${GANTRY_DOCS_DIR}/completions/_gantry
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/zsh/vendor-completions)
