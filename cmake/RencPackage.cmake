# The Debian package of the dist build (scripts/build.sh dist; docs/SCALE.md):
#   cmake --build build-dist --target package     (or: cd build-dist && cpack -G DEB)
# gives build-dist/reencrypt_VERSION_ARCH.deb, installable with
# `apt-get install ./reencrypt_*.deb` on Debian 12: /usr/bin/reencrypt and
# the user docs.  Its Depends are what dpkg-shlibdeps finds the binary
# linked against (OpenSSL, liburing, zstd, SQLite, libcurl, jansson, expat,
# and the multi-buffer crypto library where it was built with it), so a node
# gets exactly the libraries this build needs.  A test build (test seams
# compiled in) refuses to install, hence to package (reencrypt/CMakeLists.txt).
if(RENC_TEST_HOOKS)
  return()
endif()
install(FILES README.md docs/CLI.md docs/GUIDE.md docs/JOURNAL.md docs/SCALE.md
              docs/BLOBSTORAGE.md docs/KEYVAULT.md docs/SECURITY.md docs/FORMAT.md
        DESTINATION share/doc/reencrypt)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME reencrypt)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "reencrypt maintainers <maintainers@reencrypt.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "move envelope-encrypted blobs from one key to another, crash-safe")
set(CPACK_PACKAGE_DESCRIPTION
    "reencrypt rewraps or rekeys RENC v1 blobs (AES-256-GCM records under a data key wrapped by key-encryption keys in a local keyring or a key vault) in local trees and Azure Blob Storage containers, resumably, with a journal; verify, plan and status report on them.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # reencrypt_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_OUTPUT_FILE_PREFIX ${CMAKE_BINARY_DIR})
include(CPack)
