# `ear mel`: against torchaudio's fixtures, shapes, bad configurations and usage.
ear_shell_test(cli_mel mel.sh)
