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
