# The web page in a real browser: Debian's chromium, headless, driven by
# playwright-core from npm (`npm ci` in tests/browser; make deps runs it).
# Skipped (77) only when chromium or node_modules is missing. Screenshots go
# to <build>/test-artifacts/browser/.
ear_shell_test(browser_page browser.sh)
set_tests_properties(browser_page PROPERTIES SKIP_RETURN_CODE 77
                     # chromium alone keeps both cores of a small machine busy
                     PROCESSORS 2)
set_property(TEST browser_page APPEND PROPERTY ENVIRONMENT
             "EAR_SITE_BIN=$<TARGET_FILE:ear-site>;EAR_BROWSER_ARTIFACTS=${CMAKE_BINARY_DIR}/test-artifacts/browser")

# The original's flows (camera, image upload, two columns, /ce-loss) against
# POST /query over an original-layout dataset. Skipped (77) while `ear serve`
# has no /query.
ear_shell_test(browser_original original.sh)
set_tests_properties(browser_original PROPERTIES SKIP_RETURN_CODE 77 PROCESSORS 2)
set_property(TEST browser_original APPEND PROPERTY ENVIRONMENT
             "EAR_SITE_BIN=$<TARGET_FILE:ear-site>;EAR_BROWSER_ARTIFACTS=${CMAKE_BINARY_DIR}/test-artifacts/browser")
