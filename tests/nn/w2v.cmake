# The original's model family (tools/make_w2v_fixtures.py): wav2vec2 + torchvision ResNet from
# torch.save files, against PyTorch; the full-size model made at test time (77 without torch).
ear_test(nn_w2v SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_nn_w2v.c LIBS ear_nn ear_audio ear_image)
ear_shell_test(nn_w2v_full w2v_full.sh)
set_tests_properties(nn_w2v_full PROPERTIES SKIP_RETURN_CODE 77)
