/* The sandbox on its own: test_sandbox FILES_DIR (make_files.py's output).
 * Helpers decode exactly what the in-process decoders do; they run locked
 * down (seccomp, no new privileges, not root); crafted images are answered in
 * bounded time without touching this process's memory; and a helper that
 * hangs, dies, lies or is cancelled costs one failed job and is replaced. */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "test.h"

static const char *files_dir;

static long long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static uint8_t *read_file(const char *dir, const char *name, size_t *size)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ear_error err;
    uint8_t *data = ear_file_read(path, (size_t)1 << 28, size, &err);
    if (!data)
        fprintf(stderr, "%s\n", err.message);
    return data;
}

/* A 16-bit mono WAV of a 440 Hz tone: n samples at rate. */
static uint8_t *make_wav(int rate, int n, size_t *size)
{
    *size = 44 + (size_t)n * 2;
    uint8_t *w = calloc(1, *size);
    uint32_t u;
    uint16_t s;
    memcpy(w, "RIFF", 4);
    u = (uint32_t)(*size - 8), memcpy(w + 4, &u, 4);
    memcpy(w + 8, "WAVEfmt ", 8);
    u = 16, memcpy(w + 16, &u, 4);
    s = 1, memcpy(w + 20, &s, 2);
    s = 1, memcpy(w + 22, &s, 2);
    u = (uint32_t)rate, memcpy(w + 24, &u, 4);
    u = (uint32_t)rate * 2, memcpy(w + 28, &u, 4);
    s = 2, memcpy(w + 32, &s, 2);
    s = 16, memcpy(w + 34, &s, 2);
    memcpy(w + 36, "data", 4);
    u = (uint32_t)n * 2, memcpy(w + 40, &u, 4);
    for (int i = 0; i < n; i++) {
        int16_t v = (int16_t)(12000 * sin(2 * M_PI * 440 * i / rate));
        memcpy(w + 44 + 2 * i, &v, 2);
    }
    return w;
}

/* The status line "Name:\tvalue" of /proc/PID/status, for the helpers (this
 * process's children): how many say so. */
static int helpers_with(const char *field, const char *value)
{
    int found = 0;
    DIR *proc = opendir("/proc");
    struct dirent *e;
    while (proc && (e = readdir(proc))) {
        char path[300], line[256];
        snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        int child = 0, match = 0;
        while (fgets(line, sizeof line, f)) {
            int ppid;
            if (sscanf(line, "PPid: %d", &ppid) == 1)
                child = ppid == getpid();
            if (strncmp(line, field, strlen(field)) == 0 && strstr(line, value))
                match = 1;
        }
        fclose(f);
        found += child && match;
    }
    if (proc)
        closedir(proc);
    return found;
}

/* The decode options of a job: rate and cap, the rest the defaults. */
static ear_audio_decode_options options(int rate, double max_seconds)
{
    ear_audio_decode_options o;
    ear_audio_decode_options_default(&o);
    o.sample_rate = rate;
    o.max_seconds = max_seconds;
    return o;
}

/* A 16-bit stereo WAV at 44.1 kHz, the channels apart: what wav2vec2's
 * `ffmpeg -ar 16000 -ac 1` decoding (ffmpeg_cli) downmixes and quantises. */
static uint8_t *make_stereo_wav(int n, size_t *size)
{
    const int rate = 44100;
    *size = 44 + (size_t)n * 4;
    uint8_t *w = calloc(1, *size);
    uint32_t u;
    uint16_t s;
    memcpy(w, "RIFF", 4);
    u = (uint32_t)(*size - 8), memcpy(w + 4, &u, 4);
    memcpy(w + 8, "WAVEfmt ", 8);
    u = 16, memcpy(w + 16, &u, 4);
    s = 1, memcpy(w + 20, &s, 2);
    s = 2, memcpy(w + 22, &s, 2);
    u = (uint32_t)rate, memcpy(w + 24, &u, 4);
    u = (uint32_t)rate * 4, memcpy(w + 28, &u, 4);
    s = 4, memcpy(w + 32, &s, 2);
    s = 16, memcpy(w + 34, &s, 2);
    memcpy(w + 36, "data", 4);
    u = (uint32_t)n * 4, memcpy(w + 40, &u, 4);
    for (int i = 0; i < n; i++) {
        int16_t l = (int16_t)(12000 * sin(2 * M_PI * 440 * i / rate));
        int16_t r = (int16_t)(9000 * sin(2 * M_PI * 1250 * i / rate));
        memcpy(w + 44 + 4 * i, &l, 2);
        memcpy(w + 46 + 4 * i, &r, 2);
    }
    return w;
}

/* wav2vec2's decoding (ffmpeg_cli: FFmpeg's downmix, s16 samples) crosses into
 * the helper: the same samples as in-process, and not those of the float path. */
static void test_ffmpeg_cli_as_in_process(ear_sandbox_pool *pool)
{
    size_t size;
    uint8_t *wav = make_stereo_wav(44100 / 2, &size);
    ear_audio_clip a = {0}, b = {0}, c = {0};
    ear_error err;
    ear_audio_decode_options o = options(16000, 60);
    o.ffmpeg_cli = 1;
    int rc = ear_sandbox_decode_audio(pool, wav, size, &o, NULL, &a, &err);
    EAR_CHECK_MSG(rc == 0, "sandboxed ffmpeg_cli decode: %d %s", rc, err.message);
    EAR_CHECK(ear_audio_decode(wav, size, &o, &b, &err) == 0);
    EAR_CHECK_MSG(a.count == b.count && a.count > 0 &&
                      memcmp(a.samples, b.samples, a.count * sizeof(float)) == 0,
                  "ffmpeg_cli: the same samples in and out of the sandbox (%zu, %zu)", a.count,
                  b.count);
    /* Every sample a multiple of 1/32768: quantised to 16 bits on the way. */
    int quantised = 1;
    for (size_t i = 0; i < a.count; i++)
        quantised &= a.samples[i] * 32768.0f == floorf(a.samples[i] * 32768.0f);
    EAR_CHECK_MSG(quantised, "ffmpeg_cli samples come back as s16 values");
    o.ffmpeg_cli = 0;
    rc = ear_sandbox_decode_audio(pool, wav, size, &o, NULL, &c, &err);
    EAR_CHECK_MSG(rc == 0 && c.count > 0 &&
                      (c.count != a.count ||
                       memcmp(c.samples, a.samples, a.count * sizeof(float)) != 0),
                  "the flag is what made the difference (%d)", rc);
    ear_audio_clip_free(&a);
    ear_audio_clip_free(&b);
    ear_audio_clip_free(&c);
    free(wav);
}

static void test_same_as_in_process(ear_sandbox_pool *pool)
{
    size_t size;
    uint8_t *wav = make_wav(22050, 11025, &size);
    ear_audio_clip a = {0}, b = {0};
    ear_error err;
    ear_audio_decode_options o = options(16000, 60);
    int rc = ear_sandbox_decode_audio(pool, wav, size, &o, NULL, &a, &err);
    EAR_CHECK_MSG(rc == 0, "sandboxed WAV decode: %d %s", rc, err.message);
    EAR_CHECK(ear_audio_decode(wav, size, &o, &b, &err) == 0);
    EAR_CHECK_MSG(a.count == b.count && a.count > 0 &&
                      memcmp(a.samples, b.samples, a.count * sizeof(float)) == 0,
                  "the same samples in and out of the sandbox (%zu, %zu)", a.count, b.count);
    EAR_CHECK(strcmp(a.format, "wav") == 0 && strcmp(a.codec, b.codec) == 0);
    EAR_CHECK(a.sample_rate == 16000 && !a.truncated);
    ear_audio_clip_free(&a);
    ear_audio_clip_free(&b);
    /* The cap, and the error of a refused file, come back as they are. */
    ear_audio_decode_options capped = options(16000, 0.25);
    rc = ear_sandbox_decode_audio(pool, wav, size, &capped, NULL, &a, &err);
    EAR_CHECK_MSG(rc == 0 && a.count == 4000 && a.truncated, "cap: %d %zu", rc, a.count);
    ear_audio_clip_free(&a);
    rc = ear_sandbox_decode_audio(pool, (const uint8_t *)"not audio at all", 16, &o, NULL, &a,
                                  &err);
    EAR_CHECK_MSG(rc == EAR_SANDBOX_REFUSED && strstr(err.message, "unrecognised data"),
                  "refused: %d %s", rc, err.message);
    EAR_CHECK(a.samples == NULL && a.count == 0);
    free(wav);

    const char *source = ear_test_env("EAR_SOURCE_DIR", ".");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/image", source);
    uint8_t *jpeg = read_file(dir, "photo_77x52.jpg", &size);
    ear_image x = {0}, y = {0};
    rc = jpeg ? ear_sandbox_decode_image(pool, jpeg, size, NULL, &x, &err) : -9;
    EAR_CHECK_MSG(rc == 0, "sandboxed JPEG decode: %d %s", rc, err.message);
    EAR_CHECK(jpeg && ear_image_decode(jpeg, size, &y, &err) == 0);
    EAR_CHECK(x.width == 77 && x.height == 52 && y.width == 77 &&
              memcmp(x.rgb, y.rgb, (size_t)77 * 52 * 3) == 0);
    EAR_CHECK(x.rgb_alpha_dropped == NULL && y.rgb_alpha_dropped == NULL);
    ear_image_free(&x);
    ear_image_free(&y);
    free(jpeg);

    /* A PNG with alpha: both planes come back, composited over white and the alpha
     * dropped (what the original's PIL convert("RGB") gave the wav2vec2 family). */
    uint8_t *png = read_file(dir, "rgba_64x45.png", &size);
    rc = png ? ear_sandbox_decode_image(pool, png, size, NULL, &x, &err) : -9;
    EAR_CHECK_MSG(rc == 0, "sandboxed RGBA PNG decode: %d %s", rc, err.message);
    EAR_CHECK(png && ear_image_decode(png, size, &y, &err) == 0);
    const size_t plane = (size_t)64 * 45 * 3;
    EAR_CHECK(x.width == 64 && x.height == 45 && y.width == 64 && y.height == 45 &&
              memcmp(x.rgb, y.rgb, plane) == 0);
    EAR_CHECK_MSG(y.rgb_alpha_dropped && x.rgb_alpha_dropped &&
                      memcmp(x.rgb_alpha_dropped, y.rgb_alpha_dropped, plane) == 0 &&
                      memcmp(x.rgb_alpha_dropped, x.rgb, plane) != 0,
                  "the alpha-dropped plane crosses the sandbox too");
    ear_image_free(&x);
    ear_image_free(&y);
    free(png);
}

static void test_locked_down(void)
{
    EAR_CHECK_MSG(helpers_with("Seccomp:", "2") >= 1, "a helper runs under a seccomp filter");
    EAR_CHECK_MSG(helpers_with("NoNewPrivs:", "1") >= 1, "a helper has no-new-privs");
    if (geteuid() == 0)
        EAR_CHECK_MSG(helpers_with("Uid:", "\t0\t") == 0, "no helper runs as root");
}

static void test_crafted_images(ear_sandbox_pool *pool, double timeout_s)
{
    static const char *const names[] = {"png_bomb_16000x6000.png", "jpeg_claims_65535x65535.jpg"};
    for (size_t i = 0; i < 2; i++) {
        size_t size;
        uint8_t *data = read_file(files_dir, names[i], &size);
        EAR_CHECK_MSG(data != NULL, "%s made by make_files.py", names[i]);
        if (!data)
            continue;
        long long before = rss_kb();
        double start = ear_now_ms();
        ear_image img = {0};
        ear_error err;
        int rc = ear_sandbox_decode_image(pool, data, size, NULL, &img, &err);
        double took = ear_now_ms() - start;
        printf("%s: %d in %.0f ms (%s), %dx%d\n", names[i], rc, took, rc ? err.message : "ok",
               img.width, img.height);
        EAR_CHECK_MSG(rc == 0 || rc == EAR_SANDBOX_REFUSED || rc == EAR_SANDBOX_KILLED,
                      "%s: answered (%d)", names[i], rc);
        EAR_CHECK_MSG(took < (timeout_s + 3) * 1000 * atof(ear_test_env("EAR_TEST_TIME_SCALE", "1")),
                      "%s: within the deadline and a margin (%.0f ms)", names[i], took);
        ear_image_free(&img);
        long long after = rss_kb();
        EAR_CHECK_MSG(after - before < 4096, "%s: this process's RSS %lld -> %lld kB", names[i],
                      before, after);
        if (i == 1)
            EAR_CHECK_MSG(rc == EAR_SANDBOX_REFUSED && (strstr(err.message, "65535") || strstr(err.message, "dimension")),
                          "a JPEG claiming 65535x65535 is refused before decoding: %s",
                          err.message);
        free(data);
    }
}

/* A helper script standing in for `ear`: what a broken or hijacked helper does. */
static ear_sandbox_pool *fake_pool(const char *name, const char *script, double timeout_s,
                                   ear_error *err)
{
    static char path[2048];
    char tmp[1024];
    ear_test_tmp_path(tmp, sizeof tmp, "");
    snprintf(path, sizeof path, "%s/sandbox-fake-%s-%d.sh", tmp, name, (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fprintf(f, "#!/bin/sh\n%s\n", script);
    fclose(f);
    chmod(path, 0755);
    ear_sandbox_options o;
    ear_sandbox_options_default(&o);
    o.exe = path;
    o.timeout_s = timeout_s;
    return ear_sandbox_pool_start(&o, err);
}

static void test_bad_helpers(void)
{
    ear_error err;
    uint8_t input[64] = {1, 2, 3};
    ear_audio_clip clip;
    const ear_audio_decode_options o = options(16000, 60);

    ear_sandbox_pool *pool = fake_pool("false", "exit 5", 1, &err);
    EAR_CHECK_MSG(!pool && strstr(err.message, "did not start") && strstr(err.message, "status 5"),
                  "a helper that exits at once: the pool does not start (%s)", err.message);
    ear_sandbox_pool_stop(pool);

    /* Says it is ready, then never answers: the deadline, then a fresh one. */
    pool = fake_pool("hang", "printf EARY; exec cat >/dev/null", 0.5, &err);
    EAR_CHECK_MSG(pool != NULL, "a hanging helper's pool starts (%s)", err.message);
    if (pool) {
        double start = ear_now_ms();
        int rc = ear_sandbox_decode_audio(pool, input, sizeof input, &o, NULL, &clip, &err);
        double took = ear_now_ms() - start;
        EAR_CHECK_MSG(rc == EAR_SANDBOX_KILLED && strstr(err.message, "longer than 0.5 s"),
                      "a hanging helper: killed at the deadline (%d, %s)", rc, err.message);
        EAR_CHECK_MSG(took >= 450 && took < 3000, "... after 0.5 s (%.0f ms)", took);
        EAR_CHECK_MSG(ear_sandbox_pool_spawned(pool) == 2, "... and replaced (%llu started)",
                      (unsigned long long)ear_sandbox_pool_spawned(pool));
        /* Cancelled: the flag is up before the job, so it ends at its first wait. */
        volatile int cancel = 1;
        ear_sandbox_cancel c = {.flag = &cancel, .client_fd = -1};
        start = ear_now_ms();
        rc = ear_sandbox_decode_audio(pool, input, sizeof input, &o, &c, &clip, &err);
        took = ear_now_ms() - start;
        EAR_CHECK_MSG(rc == EAR_SANDBOX_CANCELLED && took < 400,
                      "a cancelled job ends at once (%d in %.0f ms: %s)", rc, took, err.message);
        ear_sandbox_pool_stop(pool);
    }

    pool = fake_pool("dies", "printf EARY; exec kill -SEGV $$", 2, &err);
    if (pool) {
        int rc = ear_sandbox_decode_audio(pool, input, sizeof input, &o, NULL, &clip, &err);
        EAR_CHECK_MSG(rc == EAR_SANDBOX_KILLED && strstr(err.message, "crashed"),
                      "a helper that crashes: one failed job (%d, %s)", rc, err.message);
        ear_sandbox_pool_stop(pool);
    }

    /* A reply that lies: a header claiming 2^40 samples. */
    pool = fake_pool("lies",
                     "printf EARY; head -c 104 >/dev/null; printf EARR; head -c 12 /dev/zero; "
                     "printf '\\200>\\000\\000'; head -c 4 /dev/zero; "
                     "printf '\\000\\000\\000\\000\\000\\001\\000\\000wav'; head -c 29 /dev/zero; "
                     "printf pcm; head -c 29 /dev/zero; exec cat >/dev/null",
                     2, &err);
    if (pool) {
        int rc = ear_sandbox_decode_audio(pool, input, sizeof input, &o, NULL, &clip, &err);
        EAR_CHECK_MSG(rc == EAR_SANDBOX_KILLED && strstr(err.message, "malformed"),
                      "a lying helper: its reply is refused (%d, %s)", rc, err.message);
        EAR_CHECK(clip.samples == NULL);
        ear_sandbox_pool_stop(pool);
    }
}

int main(int argc, char **argv)
{
    files_dir = argc > 1 ? argv[1] : ".";
    ear_sandbox_options o;
    ear_sandbox_options_default(&o);
    o.exe = ear_test_env("EAR_BIN", "build/ear");
    o.timeout_s = 3 * atof(ear_test_env("EAR_TEST_TIME_SCALE", "1"));
    ear_error err;
    double start = ear_now_ms();
    ear_sandbox_pool *pool = ear_sandbox_pool_start(&o, &err);
    EAR_CHECK_MSG(pool != NULL, "the pool starts: %s", pool ? "" : err.message);
    if (!pool)
        return ear_test_finish();
    printf("a helper started in %.1f ms\n", ear_now_ms() - start);
    test_locked_down();
    test_same_as_in_process(pool);
    test_ffmpeg_cli_as_in_process(pool);
    test_crafted_images(pool, o.timeout_s);
    ear_sandbox_pool_stop(pool);
    test_bad_helpers();
    return ear_test_finish();
}
