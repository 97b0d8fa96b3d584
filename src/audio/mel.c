/* The normalised log-mel spectrogram: the recipe of
 * torchaudio.transforms.MelSpectrogram(power=2, center=True, pad_mode="reflect",
 * norm=None, mel_scale="htk"), then log(mel + offset) and (x - mean) / std.
 * Window and filterbank are built in float32 the way torch builds them, so that
 * the differences left are FFT, summation and log rounding (~1e-5 after
 * normalisation; tests/audio/test_mel.c measures them). */
#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"

/* FFTW's planner keeps global state: creating and destroying plans must not run
 * concurrently (fftwf_execute on a plan's own buffers may). */
static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;

/* One triangle of the filterbank: its nonzero weights, over consecutive bins. */
typedef struct mel_band {
    int first_bin;
    int bin_count;
    const float *weights; /* bin_count weights, inside ear_audio_mel.band_weights */
} mel_band;

struct ear_audio_mel {
    ear_audio_mel_config config;
    int bin_count;       /* n_fft / 2 + 1 */
    int pad;             /* reflect padding on each side: n_fft / 2 */
    int window_offset;   /* where the win_length window sits in the n_fft frame */
    float *window;       /* win_length periodic Hann weights */
    mel_band *bands;     /* n_mels */
    float *band_weights; /* all bands' weights, back to back */
    float *frame;        /* n_fft samples, FFT input */
    fftwf_complex *spectrum; /* bin_count, FFT output */
    float *power;        /* bin_count, |spectrum|^2 */
    fftwf_plan plan;
    float log_offset, mean, std; /* float32, as torch applies them to a float32 tensor */
};

static int check_config(const ear_audio_mel_config *c, ear_error *err)
{
    if (c->sample_rate < 1)
        return ear_error_set(err, "mel: sample_rate must be positive (got %d)", c->sample_rate);
    if (c->n_fft < 2 || c->n_fft > 65536)
        return ear_error_set(err, "mel: n_fft must be from 2 to 65536 (got %d)", c->n_fft);
    if (c->win_length < 1 || c->win_length > c->n_fft)
        return ear_error_set(err, "mel: win_length must be from 1 to n_fft (%d) (got %d)",
                             c->n_fft, c->win_length);
    if (c->hop_length < 1)
        return ear_error_set(err, "mel: hop_length must be positive (got %d)", c->hop_length);
    if (c->n_mels < 1 || c->n_mels > 1024)
        return ear_error_set(err, "mel: n_mels must be from 1 to 1024 (got %d)", c->n_mels);
    if (!isfinite(c->f_min) || !isfinite(c->f_max) || c->f_min < 0 || c->f_max <= c->f_min)
        return ear_error_set(err, "mel: need 0 <= f_min < f_max (got f_min %g, f_max %g)",
                             c->f_min, c->f_max);
    if (!isfinite(c->log_offset) || c->log_offset <= 0)
        return ear_error_set(err, "mel: log_offset must be positive (got %g)", c->log_offset);
    if (!isfinite(c->mean) || !isfinite(c->std) || c->std == 0)
        return ear_error_set(err, "mel: mean must be finite and std finite and non-zero "
                                  "(got mean %g, std %g)", c->mean, c->std);
    return 0;
}

/* Element i of torch.linspace(start, end, steps) in float32, rounded as torch
 * 1.13's x86 AVX2 kernel rounds it: the first half counts up from start, the
 * second down from end, with fused multiply-adds; inside whole blocks of 16 the
 * values come in vectors of 8, each element its vector's base plus j * step
 * (not fused). A filterbank weight near a triangle's foot is sensitive to the
 * last bit of these frequencies, so the rounding is matched, not approximated. */
static float linspace_at(float start, float end, int steps, int i)
{
    if (steps == 1)
        return start;
    float step = (end - start) / (float)(steps - 1);
    int half = steps / 2, vector_end = steps / 16 * 16;
    int base_index = i < vector_end ? i - i % 8 : i;
    float base = base_index < half ? fmaf(step, (float)base_index, start)
                                   : fmaf(-step, (float)(steps - base_index - 1), end);
    /* Two statements, so that no compiler fuses them into one rounding. */
    float offset = (float)(i - base_index) * step;
    return base + offset;
}

/* torch.hann_window(win_length, periodic=True): 0.5 - 0.5 cos(2 pi n / win_length),
 * with the factor rounded to float32 first, as torch's in-place float ops do. */
static void make_window(float *window, int win_length)
{
    const double pi = 3.14159265358979323846;
    float factor = (float)(2.0 * pi / (double)win_length);
    for (int n = 0; n < win_length; n++)
        window[n] = -0.5f * cosf((float)n * factor) + 0.5f;
}

/* One weight of torchaudio's triangular filterbank, in its float32 operations:
 * band b rises from hz[b] to hz[b + 1] and falls to hz[b + 2]. */
static float triangle_weight(const float *hz, int band, float bin_hz)
{
    float down = (-1.0f * (hz[band] - bin_hz)) / (hz[band + 1] - hz[band]);
    float up = (hz[band + 2] - bin_hz) / (hz[band + 2] - hz[band + 1]);
    return fmaxf(0.0f, fminf(down, up));
}

/* torchaudio's melscale_fbanks (htk, no norm) in float32, stored sparse: for each
 * band only the run of bins its triangle covers. */
static int make_filterbank(ear_audio_mel *m, ear_error *err)
{
    const ear_audio_mel_config *c = &m->config;
    int points = c->n_mels + 2;
    int rc = -1;
    float *hz = malloc((size_t)points * sizeof *hz);
    float *bin_hz = malloc((size_t)m->bin_count * sizeof *bin_hz);
    if (!hz || !bin_hz) {
        ear_error_set(err, "mel: out of memory");
        goto done;
    }
    /* The mel edges are Python floats (double); the points between are float32. */
    float mel_min = (float)(2595.0 * log10(1.0 + c->f_min / 700.0));
    float mel_max = (float)(2595.0 * log10(1.0 + c->f_max / 700.0));
    for (int i = 0; i < points; i++) {
        float mel = linspace_at(mel_min, mel_max, points, i);
        /* torch's vectorised pow is within an ulp of the exact power; the double
         * one rounded to float is that exact power in all but rare ties. */
        float power = (float)pow(10.0, (double)(mel / 2595.0f));
        hz[i] = 700.0f * (power - 1.0f);
        /* Equal neighbours would divide by zero: an empty triangle, not a filter. */
        if (i > 0 && !(hz[i] > hz[i - 1])) {
            ear_error_set(err, "mel: f_min %g to f_max %g Hz is too narrow for %d mels", c->f_min,
                          c->f_max, c->n_mels);
            goto done;
        }
    }
    /* torch uses sample_rate // 2, an integer, as the top bin's frequency. */
    for (int k = 0; k < m->bin_count; k++)
        bin_hz[k] = linspace_at(0.0f, (float)(c->sample_rate / 2), m->bin_count, k);

    /* A triangle is one run of bins; a band that catches no bin (too many mels
     * for n_fft) stays all zeros, as in torch, which only warns. */
    size_t total = 0;
    for (int b = 0; b < c->n_mels; b++) {
        int first = -1, end = 0;
        for (int k = 0; k < m->bin_count; k++) {
            if (triangle_weight(hz, b, bin_hz[k]) > 0.0f) {
                if (first < 0)
                    first = k;
                end = k + 1;
            }
        }
        m->bands[b].first_bin = first < 0 ? 0 : first;
        m->bands[b].bin_count = first < 0 ? 0 : end - first;
        total += (size_t)m->bands[b].bin_count;
    }
    m->band_weights = malloc((total ? total : 1) * sizeof *m->band_weights);
    if (!m->band_weights) {
        ear_error_set(err, "mel: out of memory");
        goto done;
    }
    float *next = m->band_weights;
    for (int b = 0; b < c->n_mels; b++) {
        mel_band *band = &m->bands[b];
        for (int k = 0; k < band->bin_count; k++)
            next[k] = triangle_weight(hz, b, bin_hz[band->first_bin + k]);
        band->weights = next;
        next += band->bin_count;
    }
    rc = 0;
done:
    free(hz);
    free(bin_hz);
    return rc;
}

ear_audio_mel *ear_audio_mel_create(const ear_audio_mel_config *c, ear_error *err)
{
    if (!c) {
        ear_error_set(err, "mel: no configuration");
        return NULL;
    }
    if (check_config(c, err) != 0)
        return NULL;
    ear_audio_mel *m = calloc(1, sizeof *m);
    if (!m) {
        ear_error_set(err, "mel: out of memory");
        return NULL;
    }
    m->config = *c;
    m->bin_count = c->n_fft / 2 + 1;
    m->pad = c->n_fft / 2;
    m->window_offset = (c->n_fft - c->win_length) / 2;
    m->log_offset = (float)c->log_offset;
    m->mean = (float)c->mean;
    m->std = (float)c->std;

    m->window = malloc((size_t)c->win_length * sizeof *m->window);
    m->bands = calloc((size_t)c->n_mels, sizeof *m->bands);
    m->power = malloc((size_t)m->bin_count * sizeof *m->power);
    /* FFTW's own allocator aligns the buffers for its SIMD code paths. */
    m->frame = fftwf_alloc_real((size_t)c->n_fft);
    m->spectrum = fftwf_alloc_complex((size_t)m->bin_count);
    if (!m->window || !m->bands || !m->power || !m->frame || !m->spectrum) {
        ear_error_set(err, "mel: out of memory");
        goto fail;
    }
    make_window(m->window, c->win_length);
    if (make_filterbank(m, err) != 0)
        goto fail;

    /* FFTW_ESTIMATE: the plan (hence the rounding) is the same on every run.
     * FFTW_MEASURE saved ~3% of a 5 s clip's time (bench/bench_mel.c) but made
     * creating one take 70 ms instead of 1. */
    pthread_mutex_lock(&planner_lock);
    m->plan = fftwf_plan_dft_r2c_1d(c->n_fft, m->frame, m->spectrum, FFTW_ESTIMATE);
    pthread_mutex_unlock(&planner_lock);
    if (!m->plan) {
        ear_error_set(err, "mel: FFTW could not plan a transform of %d points", c->n_fft);
        goto fail;
    }
    return m;
fail:
    ear_audio_mel_free(m);
    return NULL;
}

size_t ear_audio_mel_frames(const ear_audio_mel *m, size_t count)
{
    /* torch.stft after centre padding: 1 + (count + 2 pad - n_fft) / hop, which
     * is 1 + count / hop for an even n_fft. */
    size_t padded = count + 2 * (size_t)m->pad;
    size_t n_fft = (size_t)m->config.n_fft;
    if (padded < n_fft)
        return 0;
    return 1 + (padded - n_fft) / (size_t)m->config.hop_length;
}

/* Fills m->frame with frame number index of the reflect-padded wave, windowed. */
static void fill_frame(ear_audio_mel *m, const float *wave, size_t count, size_t index)
{
    const ear_audio_mel_config *c = &m->config;
    float *frame = m->frame;
    int offset = m->window_offset;
    memset(frame, 0, (size_t)offset * sizeof *frame);
    memset(frame + offset + c->win_length, 0,
           (size_t)(c->n_fft - offset - c->win_length) * sizeof *frame);
    /* Position in the unpadded wave of the window's first sample; the padding
     * reflects without repeating the edge sample (x[1], x[0], x[1], ...). */
    long long start = (long long)(index * (size_t)c->hop_length) + offset - m->pad;
    long long last = (long long)count - 1;
    if (start >= 0 && start + c->win_length - 1 <= last) {
        const float *x = wave + start;
        for (int n = 0; n < c->win_length; n++)
            frame[offset + n] = x[n] * m->window[n];
        return;
    }
    for (int n = 0; n < c->win_length; n++) {
        long long t = start + n;
        if (t < 0)
            t = -t;
        else if (t > last)
            t = 2 * last - t;
        frame[offset + n] = wave[t] * m->window[n];
    }
}

int ear_audio_mel_compute(ear_audio_mel *m, const float *wave, size_t count, float *out,
                          ear_error *err)
{
    if (!m || !wave || !out)
        return ear_error_set(err, "mel: no wave or no output");
    if (count == 0)
        return ear_error_set(err, "mel: the clip is empty");
    if (count <= (size_t)m->pad)
        return ear_error_set(err, "mel: the clip is too short: %zu samples, need more than %d "
                                  "(n_fft / 2) for reflect padding", count, m->pad);
    const ear_audio_mel_config *c = &m->config;
    size_t frames = ear_audio_mel_frames(m, count);
    for (size_t f = 0; f < frames; f++) {
        fill_frame(m, wave, count, f);
        fftwf_execute(m->plan);
        for (int k = 0; k < m->bin_count; k++) {
            float re = m->spectrum[k][0], im = m->spectrum[k][1];
            m->power[k] = re * re + im * im;
        }
        for (int b = 0; b < c->n_mels; b++) {
            const mel_band *band = &m->bands[b];
            const float *p = m->power + band->first_bin;
            float sum = 0.0f;
            for (int k = 0; k < band->bin_count; k++)
                sum += p[k] * band->weights[k];
            out[(size_t)b * frames + f] = (logf(sum + m->log_offset) - m->mean) / m->std;
        }
    }
    return 0;
}

void ear_audio_mel_free(ear_audio_mel *m)
{
    if (!m)
        return;
    if (m->plan) {
        pthread_mutex_lock(&planner_lock);
        fftwf_destroy_plan(m->plan);
        pthread_mutex_unlock(&planner_lock);
    }
    fftwf_free(m->frame);
    fftwf_free(m->spectrum);
    free(m->power);
    free(m->window);
    free(m->band_weights);
    free(m->bands);
    free(m);
}
