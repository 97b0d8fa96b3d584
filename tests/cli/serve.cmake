# `ear serve`: bad usage (exit 2) and start-up failures (exit 1).
ear_shell_test(cli_serve serve.sh)
# `ear serve --project`: a folder in the original's layout, its index built when missing.
ear_shell_test(cli_project project.sh)
