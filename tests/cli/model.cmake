# `ear embed`, `ear info` on models, `ear mel --model`: against PyTorch's fixtures
# (tools/make_nn_fixtures.py), and every bad input refused with the right status.
ear_shell_test(cli_model model.sh)
