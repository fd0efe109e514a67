# The Debian package (`cpack -G DEB` in a build tree; scripts/package.sh
# makes a Release one): gantry_<version>_amd64.deb with what `cmake
# --install` puts under /usr (cmake/install.cmake, cmake/docs.cmake): the
# three executables, the systemd units, the man pages, the bash and zsh
# completions and the docs.

# cpack (like the `install` target) would first build `all`, every test
# included; a package needs only what is installed, which package.sh (and
# whoever runs cpack) builds by name.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME gantry)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "gantry maintainers <gantry@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "daemonless container image and snapshot service")
set(CPACK_PACKAGE_DESCRIPTION
    "gantry pulls, stores and unpacks OCI and Docker images into overlayfs or native\n"
    "snapshots without a daemon, serves the CRI ImageService (gantry serve) and runs\n"
    "containers with its own OCI runtime (gantry-runtime).")
string(REPLACE ";" "" CPACK_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # gantry_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
# Debug info stays in the build tree: the .deb ships stripped executables
# (gantry-serve is a third of the size).
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/gantry/gantry")
# Depends from the libraries the executables link (dpkg-shlibdeps, from
# dpkg-dev; scripts/setup.sh installs it), plus the packages of the
# libraries gantry dlopen()s at first use (src/lazylib: libcurl, libarchive,
# libcrypto), which dpkg-shlibdeps cannot see as they are not NEEDED: the
# owners of the very libraries the build linked its stubs against.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
list(GET CURL_LIBRARIES 0 lazy_curl)
set(GANTRY_LAZY_LIBRARIES "")
set(lazy_packages "")
foreach(lib ${lazy_curl} ${archive_library} ${OPENSSL_CRYPTO_LIBRARY})
  get_filename_component(real "${lib}" REALPATH)
  list(APPEND GANTRY_LAZY_LIBRARIES "${real}")
  # Merged /usr: dpkg may list the file under /lib or /usr/lib.
  string(REGEX REPLACE "^/usr/" "/" other "${real}")
  execute_process(COMMAND dpkg-query -S "${real}" OUTPUT_VARIABLE owner RESULT_VARIABLE rc
                  ERROR_QUIET)
  if(NOT rc EQUAL 0)
    execute_process(COMMAND dpkg-query -S "${other}" OUTPUT_VARIABLE owner RESULT_VARIABLE rc
                    ERROR_QUIET)
  endif()
  if(rc EQUAL 0 AND owner MATCHES "^([^:, ]+)")
    list(APPEND lazy_packages "${CMAKE_MATCH_1}")
  else()
    message(WARNING "package: no Debian package owns ${real}; the .deb will not depend on it")
  endif()
endforeach()
list(JOIN lazy_packages ", " CPACK_DEBIAN_PACKAGE_DEPENDS)
include(CPack)
