# Debian package: `cpack -G DEB` in a configured and built build directory makes
# storecache_<version>_amd64.deb. Included from the top-level CMakeLists.txt after the
# install(TARGETS storecache ...) rule, which puts the binary in <prefix>/bin.
#
#   /usr/bin/storecache
#   /lib/systemd/system/storecache.service
#   /usr/lib/sysusers.d/storecache.conf       the storecache user and group
#   /usr/lib/tmpfiles.d/storecache.conf       /var/cache/storecache, /etc/storecache/tls
#   /etc/logrotate.d/storecache               rotates an access-log file (rename + SIGUSR1)
#   /etc/storecache/storecache.toml           the example config, a dpkg conffile
#   /usr/share/doc/storecache/                the example config again, for reference
#   /usr/share/man/man8/storecache.8.gz       storecache(8): commands, signals, files, exit codes
#   /usr/share/man/man5/storecache.toml.5.gz  storecache.toml(5): every config key
#
# The unit, sysusers and tmpfiles paths are absolute (Debian 12 keeps units in /lib), so a plain
# `cmake --install` writes them there too; it never overwrites an existing
# /etc/storecache/storecache.toml.

set(STORECACHE_EXAMPLE_CONFIG ${PROJECT_SOURCE_DIR}/config/storecache.example.toml)

install(FILES ${PROJECT_SOURCE_DIR}/systemd/storecache.service
        DESTINATION /lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/storecache.sysusers
        DESTINATION /usr/lib/sysusers.d RENAME storecache.conf)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/storecache.tmpfiles
        DESTINATION /usr/lib/tmpfiles.d RENAME storecache.conf)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/storecache.logrotate
        DESTINATION /etc/logrotate.d RENAME storecache)
install(FILES ${STORECACHE_EXAMPLE_CONFIG} DESTINATION share/doc/storecache)
if(EXISTS ${PROJECT_SOURCE_DIR}/README.md)
  install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION share/doc/storecache)
endif()

# Manual pages, compressed as Debian policy (12.1) asks: gzip -9n, no name or time stamp in the
# header, so that the package builds reproducibly. Built with the default target.
find_program(STORECACHE_GZIP gzip REQUIRED)
set(storecache_man_pages storecache.8 storecache.toml.5)
set(storecache_man_gz)
foreach(page ${storecache_man_pages})
  set(gz ${PROJECT_BINARY_DIR}/man/${page}.gz)
  add_custom_command(
    OUTPUT ${gz}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
    COMMAND ${STORECACHE_GZIP} -9nc ${PROJECT_SOURCE_DIR}/packaging/man/${page} > ${gz}
    DEPENDS ${PROJECT_SOURCE_DIR}/packaging/man/${page}
    COMMENT "Compressing the manual page ${page}")
  list(APPEND storecache_man_gz ${gz})
  string(REGEX MATCH "[0-9]$" section ${page})
  install(FILES ${gz} DESTINATION share/man/man${section})
endforeach()
add_custom_target(storecache_man ALL DEPENDS ${storecache_man_gz})

# The config: an admin's edited copy must survive a re-install from source (dpkg protects it
# as a conffile; this guard protects it from `cmake --install`). In the package staging
# directory it never exists, so the package always carries it.
install(CODE "
  set(storecache_conf \"\$ENV{DESTDIR}/etc/storecache/storecache.toml\")
  if(EXISTS \"\${storecache_conf}\")
    message(STATUS \"Keeping: \${storecache_conf}\")
  else()
    list(APPEND CMAKE_ABSOLUTE_DESTINATION_FILES /etc/storecache/storecache.toml)
    file(INSTALL DESTINATION /etc/storecache TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE
         GROUP_READ WORLD_READ RENAME storecache.toml FILES \"${STORECACHE_EXAMPLE_CONFIG}\")
  endif()
")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME storecache)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "storecache")
set(CPACK_PACKAGE_CONTACT "storecache maintainers <storecache@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "caching HTTPS reverse proxy for in-store learning content")
set(CPACK_PACKAGE_DESCRIPTION
    "storecache runs on a server in each store, in front of the central LMS. Phones and tablets
fetch videos, HTML5 modules, PDFs and quizzes from it over HTTPS (HTTP/1.1 and HTTP/2); it
fetches each asset over the WAN once, keeps it on disk and reports hit rates on a metrics
endpoint.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # storecache_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION httpd)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies come from dpkg-shlibdeps; systemd provides systemd-sysusers and
# systemd-tmpfiles for the postinst, and the unit is Type=notify.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/conffiles ${PROJECT_SOURCE_DIR}/packaging/postinst
    ${PROJECT_SOURCE_DIR}/packaging/prerm ${PROJECT_SOURCE_DIR}/packaging/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
