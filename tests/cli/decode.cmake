# `ear decode`: .npy output, --rate, --max-seconds, failures (exit 1) and bad usage (exit 2).
ear_shell_test(cli_decode decode.sh)
