# In-process decoding (src/audio/decode.c). Test sounds are made at test time by
# decode_sounds.sh with ffmpeg and espeak-ng; ffmpeg's own decoding is the reference.
ear_test(audio_decode_formats SOURCES test_decode_formats.c test_decode_util.c LIBS ear_audio)
ear_test(audio_decode_errors SOURCES test_decode_errors.c test_decode_util.c LIBS ear_audio)
ear_test(audio_decode_downmix SOURCES test_decode_downmix.c test_decode_util.c LIBS ear_audio)
ear_test(audio_decode_threads SOURCES test_decode_threads.c test_decode_util.c
         LIBS ear_audio Threads::Threads)
