# The main site (site/): its pieces in C, then the binary over HTTP.
ear_test(site_units SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_site.c LIBS ear_site)

# A stand-in for `ear serve` that records what the dev proxy forwards.
add_executable(fake_ear ${CMAKE_CURRENT_SOURCE_DIR}/fake_ear.c)

# ear_site_shell_test(NAME script.sh): a bash test that also gets the site's binaries.
function(ear_site_shell_test name script)
  ear_shell_test(${name} ${script})
  set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT
               "EAR_SITE_BIN=$<TARGET_FILE:ear-site>;EAR_FAKE_EAR_BIN=$<TARGET_FILE:fake_ear>")
endfunction()

ear_site_shell_test(site_http test_site_http.sh)
ear_site_shell_test(site_dev_proxy test_site_dev_proxy.sh)
ear_site_shell_test(site_deploy_files test_site_deploy_files.sh)
ear_site_shell_test(site_deploy_servers test_site_deploy_servers.sh)
# Skipped (77) only while this build's `ear` has no `serve` command.
set_tests_properties(site_deploy_servers PROPERTIES SKIP_RETURN_CODE 77)

# The original service's nginx block unchanged in front of `ear serve`.
ear_site_shell_test(site_original_nginx test_site_original_nginx.sh)
set_tests_properties(site_original_nginx PROPERTIES SKIP_RETURN_CODE 77)
