# tools/convert.py: a user's resnet18 checkpoint converted with everything inferred, `ear embed`
# against the same torch modules, and every refusal (needs /usr/bin/python3 with torch and
# torchvision; skipped without).
ear_shell_test(tools_convert convert.sh)
set_tests_properties(tools_convert PROPERTIES SKIP_RETURN_CODE 77)
