# `ear index`, `ear search`, `ear info INDEX`: a dataset made at test time with ffmpeg and
# the small models of tests/fixtures/nn.
ear_shell_test(cli_index index.sh)
# A `kill -9` in the middle of `ear index` leaves the previous index as it was.
ear_shell_test(cli_index_kill index_kill.sh)
# tools/import_index.py (needs /usr/bin/python3 with torch; skipped without).
ear_shell_test(cli_index_import index_import.sh)
set_tests_properties(cli_index_import PROPERTIES SKIP_RETURN_CODE 77)
# The original's indexed_db.pt read by Ear (`ear index --import`, `ear search`, `ear serve`).
ear_shell_test(cli_import_pt import_pt.sh)
