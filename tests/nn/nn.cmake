# The model engine (src/nn): operators, the model file's checks, embeddings against PyTorch
# (fixtures from tools/make_nn_fixtures.py).
ear_test(nn_ops SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_nn_ops.c LIBS ear_nn)
ear_test(nn_model SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_nn_model.c LIBS ear_nn PkgConfig::CJSON)
ear_test(nn_golden SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_nn_golden.c LIBS ear_nn)
ear_test(nn_image_golden SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_nn_image.c LIBS ear_nn ear_image)
ear_test(nn_alloc SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_nn_alloc.c LIBS ear_nn)
target_link_options(test_nn_alloc PRIVATE
  -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=posix_memalign)
ear_test(nn_audio_only SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_nn_audio_only.c LIBS ear_nn)
ear_test(nn_backend SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_nn_backend.c LIBS ear_nn Threads::Threads)
# The same on a CPU without AVX-512 (oneDNN told so): bf16 falls back to float32, int8 to 7-bit
# activations (no VNNI), and every result stays within its tolerance.
foreach(t nn_backend nn_ops)
  add_test(NAME ${t}_avx2 COMMAND test_${t} WORKING_DIRECTORY ${EAR_SOURCE_DIR})
  ear_test_environment(${t}_avx2)
  set_property(TEST ${t}_avx2 APPEND PROPERTY ENVIRONMENT ONEDNN_MAX_CPU_ISA=AVX2)
endforeach()
