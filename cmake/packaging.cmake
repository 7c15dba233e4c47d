# Install rules and the Debian package (README "Install").
#
#   cmake --install build --prefix P   P/bin/{chat-server,backcheck}, P/share/backcheck/{knowledge,web}
#   scripts/package                    dist/backcheck_VERSION_ARCH.deb (CPack, from build/'s binaries)
#
# The binaries find share/backcheck/ relative to themselves (common/paths.hpp), so any prefix works.
# What only a system package has (/etc/backcheck, the systemd unit, /var/lib/backcheck) is the
# component "system", left out of a plain cmake --install and put in the .deb.

install(TARGETS chat-server backcheck RUNTIME DESTINATION bin COMPONENT runtime)
# The knowledge base: what LoadKnowledgeBase reads (article.txt and data/*.jsonc), not its C++.
install(FILES ${PROJECT_SOURCE_DIR}/knowledge/article.txt DESTINATION share/backcheck/knowledge COMPONENT runtime)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/knowledge/data/ DESTINATION share/backcheck/knowledge/data
        COMPONENT runtime FILES_MATCHING PATTERN "*.jsonc")
# The files the server serves (not WIDGET_CONTRACT.md, the tests' document).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/web/ DESTINATION share/backcheck/web COMPONENT runtime
        FILES_MATCHING PATTERN "*.html" PATTERN "*.js" PATTERN "*.css" PATTERN "*.svg" PATTERN "*.png" PATTERN "*.ico")

# The system package only (absolute paths: never part of cmake --install --prefix P).
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/backcheck.service DESTINATION /lib/systemd/system
        COMPONENT system EXCLUDE_FROM_ALL)
# The example configuration (deploy/backcheck.toml, read with --config), a conffile: an upgrade
# keeps the administrator's edits. Shipped when the tree has it (a new file in deploy/ reconfigures).
install(DIRECTORY DESTINATION /etc/backcheck COMPONENT system EXCLUDE_FROM_ALL)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/deploy)
set(BACKCHECK_DEB_CONTROL ${PROJECT_SOURCE_DIR}/deploy/debian/postinst ${PROJECT_SOURCE_DIR}/deploy/debian/prerm
    ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)
if(EXISTS ${PROJECT_SOURCE_DIR}/deploy/backcheck.toml)
  install(FILES ${PROJECT_SOURCE_DIR}/deploy/backcheck.toml DESTINATION /etc/backcheck COMPONENT system EXCLUDE_FROM_ALL)
  file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/deb-control/conffiles CONTENT "/etc/backcheck/backcheck.toml\n")
  list(APPEND BACKCHECK_DEB_CONTROL ${PROJECT_BINARY_DIR}/deb-control/conffiles)
endif()
# The conversations' database; postinst gives it to the backcheck user (mode 0700).
install(DIRECTORY DESTINATION /var/lib/backcheck COMPONENT system EXCLUDE_FROM_ALL
        DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME backcheck)
set(CPACK_PACKAGE_VENDOR "Backcheck")
set(CPACK_PACKAGE_CONTACT "Backcheck maintainers <backcheck@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "chat assistant for upper back pain after a workout (server and tools)")
set(CPACK_PACKAGE_DESCRIPTION "A chat assistant backend: answers from a knowledge base, screens for red-flag
symptoms and escalates. chat-server (WebSocket + HTTP, with the widget) and backcheck (the engine's tools),
the knowledge base and web files in /usr/share/backcheck, a hardened systemd unit (backcheck.service).")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # backcheck_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# One package with both components.
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime system)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
# Library dependencies from the binaries (dpkg-shlibdeps, in dpkg-dev: libre2-9, libsqlite3-0,
# libpq5, libstemmer0d, libssl3...), else the list bookworm's builds need.
find_program(DPKG_SHLIBDEPS dpkg-shlibdeps)
if(DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS
      "adduser, libc6, libstdc++6, libgcc-s1, libre2-9, libsqlite3-0, libpq5, libstemmer0d, libssl3")
endif()
# Spelling correction reads the English word lists; without them it says so and corrects less.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "wamerican, wbritish")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${BACKCHECK_DEB_CONTROL})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)

# Not in a sanitizer build: nobody packages one, and ASan names source files in the binaries.
if(BUILD_TESTING AND NOT BACKCHECK_SANITIZE)
  # Builds the .deb from this build tree's binaries (cpack, no second build), checks its contents,
  # runs the server extracted from it with no --kb/--web, and the unit file (tests/packaging).
  add_test(NAME packaging.deb
           COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/packaging/test_package.py
                   --build-dir ${PROJECT_BINARY_DIR} --server $<TARGET_FILE:chat-server> --cli $<TARGET_FILE:backcheck>
                   --cmake ${CMAKE_COMMAND} --cpack ${CMAKE_CPACK_COMMAND} --source-dir ${PROJECT_SOURCE_DIR}
                   --version ${PROJECT_VERSION})
  set_tests_properties(packaging.deb PROPERTIES TIMEOUT 180)
endif()
