# The committed demo model (demo/model.safetensors, tools/train_demo.py): a whole, valid model
# file of at most 10 MB that embeds a sound and a picture and searches a small index. No network.
ear_shell_test(demo_model model.sh)
