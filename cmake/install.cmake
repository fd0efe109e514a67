# `cmake --install BUILD [--prefix P]` (default prefix /usr/local):
#   P/bin/gantry, gantry-serve (beside gantry, where `gantry serve` looks
#     for it) and gantry-runtime;
#   P/lib/systemd/system/gantry.{service,socket} (GANTRY_SYSTEMD_UNIT_DIR),
#     the service's ExecStart naming the installed gantry;
#   P/share/doc/gantry/: the README and docs/.
# The executables carry no RPATH into the build tree: everything of ours is
# linked statically, the rest is found in the system's library paths.
include(GNUInstallDirs)

set(GANTRY_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "Where the systemd units go, relative to the install prefix unless absolute")

foreach(exe gantry gantry-serve gantry-runtime)
  if(TARGET ${exe})
    install(TARGETS ${exe} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

install(FILES ${PROJECT_SOURCE_DIR}/contrib/systemd/gantry.socket
        DESTINATION ${GANTRY_SYSTEMD_UNIT_DIR})
# The unit in contrib/ names /usr/local/bin/gantry; the installed one names
# the gantry installed with it, whatever prefix `cmake --install --prefix`
# chose (known only at install time, hence CODE rather than configure_file).
install(CODE "
  set(unit_dir \"${GANTRY_SYSTEMD_UNIT_DIR}\")
  if(NOT IS_ABSOLUTE \"\${unit_dir}\")
    set(unit_dir \"\${CMAKE_INSTALL_PREFIX}/\${unit_dir}\")
  endif()
  set(bin_dir \"${CMAKE_INSTALL_BINDIR}\")
  if(NOT IS_ABSOLUTE \"\${bin_dir}\")
    set(bin_dir \"\${CMAKE_INSTALL_PREFIX}/\${bin_dir}\")
  endif()
  file(READ \"${PROJECT_SOURCE_DIR}/contrib/systemd/gantry.service\" unit)
  string(REPLACE \"/usr/local/bin/gantry \" \"\${bin_dir}/gantry \" unit \"\${unit}\")
  string(REPLACE \"/usr/local/bin/gantry-serve\" \"\${bin_dir}/gantry-serve\" unit \"\${unit}\")
  message(STATUS \"Installing: \$ENV{DESTDIR}\${unit_dir}/gantry.service\")
  file(WRITE \"\$ENV{DESTDIR}\${unit_dir}/gantry.service\" \"\${unit}\")
")

install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}
        FILES_MATCHING PATTERN "*.md")
