# The log-mel spectrogram against torchaudio's fixtures (tools/make_mel_fixtures.py).
ear_test(audio_mel SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_mel.c LIBS ear_audio Threads::Threads)
