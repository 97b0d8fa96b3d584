# `ear serve`: bad usage (exit 2) and start-up failures (exit 1).
ear_shell_test(cli_serve serve.sh)
