/* ear decode, ear mel: audio in, as .npy. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"
#include "cli/cli.h"
#include "nn/config.h"
#include "nn/nn.h"

static const char decode_help[] =
    "usage: ear decode FILE -o OUT.npy [--rate R] [--max-seconds S]\n\n"
    "Decodes any supported audio (WebM/Opus, Ogg, MP4/AAC, MP3, WAV, FLAC; the format is\n"
    "found from the bytes, never from the name) to mono float32, written as a 1-D .npy.\n\n"
    "  -o, --output OUT.npy   where to write (required)\n"
    "  --rate R               output sample rate in Hz (default 16000)\n"
    "  --max-seconds S        stop decoding after S seconds (default 60; 0: no cap)\n"
    "  --no-sandbox           decode in this process, not in a sandboxed helper (to debug)\n"
    "  -h, --help             this text\n";

static const char mel_help[] =
    "usage: ear mel [--model M | --config C.json] FILE (-o OUT.npy | --show) [--max-seconds S]\n\n"
    "The normalised log-mel spectrogram of the whole clip (no segmenting), exactly as the\n"
    "model computes it: float32 [n_mels, frames] as .npy.\n\n"
    "  -o, --output OUT.npy   where to write\n"
    "  --show                 draw it on the terminal: time left to right, low pitch at the\n"
    "                         bottom, louder darker (either this, -o, or both)\n"
    "  --model M              take the audio parameters from an Ear model file\n"
    "  --config C.json        take them from a JSON file: the spec's `audio` object, or a whole\n"
    "                         configuration holding one (missing fields keep the defaults)\n"
    "                         without either, the spec's defaults (16 kHz, 64 mels, ...)\n"
    "  --max-seconds S        stop decoding after S seconds (default 60; 0: no cap)\n"
    "  --no-sandbox           decode in this process, not in a sandboxed helper (to debug)\n"
    "  -h, --help             this text\n";

/* Parsed options shared by decode and mel. */
typedef struct audio_args {
    const char *input, *output, *model, *config;
    int show;
    int no_sandbox;
    ear_audio_decode_options decode;
} audio_args;

/* Returns -1 to go on, or the exit status to return. */
static int parse_audio_args(const char *name, const char *help, int with_model, int argc,
                            char **argv, audio_args *a)
{
    static const struct option options[] = {
        {"output", required_argument, 0, 'o'},       {"rate", required_argument, 0, 'r'},
        {"max-seconds", required_argument, 0, 's'},  {"model", required_argument, 0, 'm'},
        {"config", required_argument, 0, 'c'},       {"help", no_argument, 0, 'h'},
        {"show", no_argument, 0, 'S'},               {"no-sandbox", no_argument, 0, 'N'},
        {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    ear_audio_decode_options_default(&a->decode);
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
        switch (c) {
        case 'o': a->output = optarg; break;
        case 'r':
            if (with_model)
                return ear_cli_usage_error(name, "--rate is not an option of this command");
            if (ear_cli_parse_int(optarg, 1000, 384000, &a->decode.sample_rate) != 0)
                return ear_cli_usage_error(name, "--rate must be 1000 to 384000 Hz");
            break;
        case 's':
            if (ear_cli_parse_double(optarg, 0, 86400, &a->decode.max_seconds) != 0)
                return ear_cli_usage_error(name, "--max-seconds must be 0 to 86400");
            break;
        case 'm':
        case 'c':
            if (!with_model)
                return ear_cli_usage_error(name, "%s is not an option of this command",
                                           argv[optind - 1]);
            *(c == 'm' ? &a->model : &a->config) = optarg;
            break;
        case 'S':
            if (!with_model)
                return ear_cli_usage_error(name, "--show is not an option of this command");
            a->show = 1;
            break;
        case 'N': a->no_sandbox = 1; break;
        case 'h': fputs(help, stdout); return EAR_EXIT_OK;
        default:
            return ear_cli_usage_error(name, "unknown option or missing value: '%s'",
                                       argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return ear_cli_usage_error(name, optind >= argc ? "no input FILE" : "one input FILE only");
    a->input = argv[optind];
    if (!a->output && !a->show)
        return ear_cli_usage_error(name, with_model ? "-o OUT.npy or --show is required"
                                                    : "-o OUT.npy is required");
    if (a->model && a->config)
        return ear_cli_usage_error(name, "--model and --config exclude each other");
    return -1;
}

/* Decodes args->input into clip; prints the error line on failure. */
static int decode_file(const audio_args *a, ear_audio_clip *clip)
{
    size_t size = 0;
    uint8_t *data = ear_cli_read_file(a->input, &size);
    if (!data)
        return -1;
    ear_error err;
    int rc = ear_cli_decode_audio(data, size, &a->decode, !a->no_sandbox, clip, &err);
    free(data);
    if (rc != 0) {
        ear_cli_fail(a->input, err.message);
        return -1;
    }
    if (clip->truncated)
        fprintf(stderr, "ear: %s: longer than %g s, decoded the first %g s only\n", a->input,
                a->decode.max_seconds, a->decode.max_seconds);
    return 0;
}

int ear_cli_decode(int argc, char **argv)
{
    audio_args a;
    int status = parse_audio_args("decode", decode_help, 0, argc, argv, &a);
    if (status >= 0)
        return status;
    ear_audio_clip clip = {0};
    if (decode_file(&a, &clip) != 0)
        return EAR_EXIT_FAILED;
    ear_error err;
    size_t shape[1] = {clip.count};
    status = EAR_EXIT_OK;
    if (ear_npy_write_f32(a.output, clip.samples, 1, shape, &err) != 0)
        status = ear_cli_fail("write", err.message);
    ear_audio_clip_free(&clip);
    return status;
}

/* The log-mel parameters: from the model file, a JSON file, or the defaults. */
static int load_mel_config(const audio_args *a, ear_audio_mel_config *mel)
{
    ear_error err;
    ear_audio_mel_config_default(mel);
    if (a->config) {
        size_t size;
        uint8_t *json = ear_cli_read_file(a->config, &size);
        if (!json)
            return -1;
        int rc = ear_nn_config_parse_mel((const char *)json, mel, &err);
        free(json);
        if (rc != 0) {
            ear_cli_fail(a->config, err.message);
            return -1;
        }
    }
    if (a->model) {
        ear_nn_config config;
        if (ear_nn_model_read_config(a->model, &config, &err) != 0) {
            fprintf(stderr, "ear: %s\n", err.message);
            return -1;
        }
        if (!config.has_audio) {
            ear_cli_fail(a->model, "the model has no audio tower");
            return -1;
        }
        *mel = config.mel;
    }
    return 0;
}

/* Draws mel [n_mels, frames] as shaded characters: frames averaged into at most
 * 96 columns, mel bands into 16 rows, values scaled between the picture's own
 * minimum and maximum so that any normalisation shows. */
static void show_mel(FILE *out, const float *mel, int n_mels, size_t frames, double seconds)
{
    static const char *const shades[] = {" ", "\u2591", "\u2592", "\u2593", "\u2588"};
    enum { max_columns = 96, max_rows = 16 };
    int columns = frames < max_columns ? (int)frames : max_columns;
    int rows = n_mels < max_rows ? n_mels : max_rows;
    if (columns == 0) {
        fprintf(out, "(no frames)\n");
        return;
    }
    float cell[max_rows][max_columns];
    float low = 0, high = 0;
    for (int r = 0; r < rows; r++) {
        int band_start = r * n_mels / rows, band_end = (r + 1) * n_mels / rows;
        for (int c = 0; c < columns; c++) {
            size_t frame_start = (size_t)c * frames / (size_t)columns;
            size_t frame_end = (size_t)(c + 1) * frames / (size_t)columns;
            double sum = 0;
            for (int b = band_start; b < band_end; b++)
                for (size_t f = frame_start; f < frame_end; f++)
                    sum += mel[(size_t)b * frames + f];
            float value = (float)(sum / ((double)(band_end - band_start) *
                                         (double)(frame_end - frame_start)));
            cell[r][c] = value;
            if ((r == 0 && c == 0) || value < low)
                low = value;
            if ((r == 0 && c == 0) || value > high)
                high = value;
        }
    }
    float range = high > low ? high - low : 1;
    for (int r = rows - 1; r >= 0; r--) {
        fputs(r == rows - 1 ? "high |" : r == 0 ? " low |" : "     |", out);
        for (int c = 0; c < columns; c++) {
            int level = (int)((cell[r][c] - low) / range * 4.999f);
            fputs(shades[level < 0 ? 0 : level > 4 ? 4 : level], out);
        }
        fputs("|\n", out);
    }
    fprintf(out, "      0 s%*s%.2f s\n", columns - 6, "", seconds);
    fprintf(out, "      %d mel bands x %zu frames; values %.2f to %.2f\n", n_mels, frames, low, high);
}

int ear_cli_mel(int argc, char **argv)
{
    audio_args a;
    int status = parse_audio_args("mel", mel_help, 1, argc, argv, &a);
    if (status >= 0)
        return status;
    ear_audio_mel_config cfg;
    if (load_mel_config(&a, &cfg) != 0)
        return EAR_EXIT_FAILED;
    a.decode.sample_rate = cfg.sample_rate;

    ear_error err;
    ear_audio_clip clip = {0};
    ear_audio_mel *mel = NULL;
    float *out = NULL;
    status = EAR_EXIT_FAILED;
    if (decode_file(&a, &clip) != 0)
        goto done;
    mel = ear_audio_mel_create(&cfg, &err);
    if (!mel) {
        ear_cli_fail("mel", err.message);
        goto done;
    }
    size_t frames = ear_audio_mel_frames(mel, clip.count);
    out = malloc((size_t)cfg.n_mels * frames * sizeof *out);
    if (!out) {
        ear_cli_fail("mel", "out of memory");
        goto done;
    }
    if (ear_audio_mel_compute(mel, clip.samples, clip.count, out, &err) != 0) {
        ear_cli_fail(a.input, err.message);
        goto done;
    }
    if (a.show)
        show_mel(stdout, out, cfg.n_mels, frames, (double)clip.count / cfg.sample_rate);
    size_t shape[2] = {(size_t)cfg.n_mels, frames};
    if (a.output && ear_npy_write_f32(a.output, out, 2, shape, &err) != 0) {
        ear_cli_fail("write", err.message);
        goto done;
    }
    status = EAR_EXIT_OK;
done:
    free(out);
    ear_audio_mel_free(mel);
    ear_audio_clip_free(&clip);
    return status;
}
