# The committed demo model (demo/model.safetensors, tools/train_demo.py): a whole, valid model
# file of at most 10 MB that embeds a sound and a picture and searches a small index. No network.
ear_shell_test(demo_model model.sh)

# The instrument demo: its dataset script on a small run (skips without fluidsynth or the cached
# .debs), and its committed model: PyTorch's embeddings, and held-out sounds first through /query.
ear_shell_test(demo_instruments_data instruments_data.sh)
set_tests_properties(demo_instruments_data PROPERTIES SKIP_RETURN_CODE 77)
ear_shell_test(demo_instruments_model instruments_model.sh)
