/* Audio in: any sound a browser or a person sends, decoded in-process to mono
 * float32, and the log-mel spectrogram the model expects. */
#ifndef EAR_AUDIO_H
#define EAR_AUDIO_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

typedef struct ear_audio_decode_options {
    int sample_rate;    /* output rate in Hz (default 16000) */
    double max_seconds; /* decoding stops here and says so (default 60); <= 0: no cap */
    int ffmpeg_cli;     /* 1: as `ffmpeg -i IN -ar RATE -ac 1 OUT.wav` does it (FFmpeg's own
                           downmix and resampler options, 16-bit samples, read back / 32768);
                           0 (default): float throughout, channels averaged */
} ear_audio_decode_options;

typedef struct ear_audio_clip {
    float *samples;   /* mono, in [-1, 1], malloc'd; owned by the clip */
    size_t count;     /* number of samples */
    int sample_rate;  /* equals the requested rate */
    int truncated;    /* 1 when decoding stopped at max_seconds */
    char format[32];  /* container found from the bytes: webm, ogg, mp4, mp3, wav, flac */
    char codec[32];   /* FFmpeg's codec name: opus, vorbis, aac, mp3, pcm_s16le, flac, ... */
} ear_audio_clip;

/* Fills o with the defaults: 16000 Hz, 60 s. */
void ear_audio_decode_options_default(ear_audio_decode_options *o);

/* Decodes an audio file held in memory (format found from the bytes, whitelisted
 * containers and codecs only) into clip; on failure clip is left empty. */
int ear_audio_decode(const uint8_t *data, size_t size, const ear_audio_decode_options *o,
                     ear_audio_clip *clip, ear_error *err);

/* Frees the samples of a clip (safe on an empty or zeroed clip). */
void ear_audio_clip_free(ear_audio_clip *clip);

typedef struct ear_audio_mel_config {
    int sample_rate, n_fft, win_length, hop_length, n_mels;
    double f_min, f_max;
    double log_offset, mean, std;
} ear_audio_mel_config;

/* Fills c with the spec's example values (16 kHz, n_fft 512, win 400, hop 160, 64 mels, ...). */
void ear_audio_mel_config_default(ear_audio_mel_config *c);

/* A log-mel computer: window, filterbank and FFT plan made once; not shared
 * between threads (each worker owns one). */
typedef struct ear_audio_mel ear_audio_mel;

/* Builds the window, filterbank and FFT plan for c. */
ear_audio_mel *ear_audio_mel_create(const ear_audio_mel_config *c, ear_error *err);

/* Number of frames for a clip of count samples: 1 + count / hop_length. */
size_t ear_audio_mel_frames(const ear_audio_mel *m, size_t count);

/* Normalised log-mel of wave into out, row-major [n_mels][frames]; out holds
 * n_mels * ear_audio_mel_frames(count) floats. Fails when count <= n_fft / 2
 * (reflect padding needs more samples than that). */
int ear_audio_mel_compute(ear_audio_mel *m, const float *wave, size_t count, float *out,
                          ear_error *err);

/* Frees a log-mel computer (NULL is fine). */
void ear_audio_mel_free(ear_audio_mel *m);

#endif
