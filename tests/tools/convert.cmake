# tools/convert.py: a user's resnet18 checkpoint converted with everything inferred, `ear embed`
# against the same torch modules, and every refusal (needs /usr/bin/python3 with torch and
# torchvision; skipped without).
ear_shell_test(tools_convert convert.sh)
set_tests_properties(tools_convert PROPERTIES SKIP_RETURN_CODE 77)
# The original reproduced and Ear, the same model, dataset and indexed_db.pt: /query alike
# (needs /usr/bin/python3 with torch, torchaudio, torchvision, flask, soundfile and gunicorn).
ear_shell_test(tools_peer_query peer_query.sh)
set_tests_properties(tools_peer_query PROPERTIES SKIP_RETURN_CODE 77)
