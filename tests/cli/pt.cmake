# `ear info` on torch.save files the .pt reader reads or refuses (tests/fixtures/pt).
ear_shell_test(cli_pt_info pt_info.sh)
