/* Helpers shared by the decode tests: test sounds made with ffmpeg at test
 * time, ffmpeg's own decoding as the reference, WAV files built in memory. */
#ifndef EAR_TEST_DECODE_UTIL_H
#define EAR_TEST_DECODE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Makes the named sounds (space-separated names of tests/audio/decode_sounds.sh)
 * in a folder of EAR_TEST_TMP; writes the folder's path to dir. Returns 0 on success. */
int decode_test_make_sounds(const char *folder, const char *names, char *dir, size_t size);

/* Reads a whole file (malloc'd); NULL when it cannot. */
uint8_t *decode_test_read(const char *path, size_t *size);

/* What the ffmpeg command makes of path: mono float32 at rate, channels averaged
 * with equal weights (a pan filter; `-ac 1` weighs them otherwise). malloc'd. */
float *decode_test_ffmpeg_reference(const char *path, int channels, int rate, size_t *count);

/* The normalised correlation of a and b at the lag in [-max_lag, max_lag] that
 * maximises it (b shifted right by lag), over the samples both have; the
 * least-squares gain of a against b at that lag. */
double decode_test_correlation(const float *a, size_t a_count, const float *b, size_t b_count,
                               int max_lag, int *lag, double *gain);

/* A WAV file in memory: format_tag 1 (PCM), 3 (IEEE float) or 0xFFFE
 * (extensible, with channel_mask); samples interleaved, as doubles in [-1, 1]
 * converted to bits per sample. data_size_claim, when not 0, replaces the data
 * chunk's size in the header (a header that lies). Returns a malloc'd buffer. */
uint8_t *decode_test_wav(int format_tag, int channels, uint32_t rate, int bits,
                         uint32_t channel_mask, const double *samples, size_t frames,
                         uint32_t data_size_claim, size_t *size);

#endif
