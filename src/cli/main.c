/* ear: the entry point. Dispatches to one function per command. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "nn/nn.h"
#include "sandbox/sandbox.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"decode", ear_cli_decode, "decode audio to mono float32 (.npy)"},
    {"mel", ear_cli_mel, "the normalised log-mel spectrogram of a clip (.npy)"},
    {"embed", ear_cli_embed, "the embedding of a sound or an image (.npy)"},
    {"info", ear_cli_info, "what a model or index file holds"},
    {"index", ear_cli_index, "embed a dataset folder into an index file"},
    {"search", ear_cli_search, "the items nearest to a sound, as JSON"},
    {"serve", ear_cli_serve, "the HTTP service: web page, search API, dataset files"},
};

static void print_help(FILE *out)
{
    fprintf(out, "usage: ear COMMAND [OPTIONS] ...\n\n"
                 "Ear: find the video frames whose sound matches a sound.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`ear COMMAND --help` describes a command. Exit status: 0 done, 1 failed, "
                 "2 bad usage.\n");
}

int ear_cli_fail(const char *what, const char *why)
{
    fprintf(stderr, "ear: %s: %s\n", what, why);
    return EAR_EXIT_FAILED;
}

int ear_cli_usage_error(const char *name, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    fprintf(stderr, "ear %s: ", name);
    vfprintf(stderr, format, ap);
    fprintf(stderr, "\n(see `ear %s --help`)\n", name);
    va_end(ap);
    return EAR_EXIT_USAGE;
}

uint8_t *ear_cli_read_file(const char *path, size_t *size)
{
    ear_error err;
    uint8_t *data = ear_file_read(path, (size_t)1 << 30, size, &err);
    if (!data)
        fprintf(stderr, "ear: %s\n", err.message);
    return data;
}

int ear_cli_parse_double(const char *text, double min, double max, double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end || !(v >= min && v <= max))
        return -1;
    *out = v;
    return 0;
}

int ear_cli_parse_int(const char *text, long min, long max, int *out)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return EAR_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_help(stdout);
        return EAR_EXIT_OK;
    }
    /* Not in the help: the pool of src/sandbox runs this, nobody else. */
    if (strcmp(argv[1], "sandbox-helper") == 0)
        return ear_sandbox_helper_main(argc - 1, argv + 1);
    /* The models' weight type unless a command's --weights says otherwise: int8, the fastest
     * (wav2vec2's products int8, convolutions bf16) that keeps every query's embedding within
     * cosine 0.999 of float32's (bench/weights_accuracy.py; BENCHMARKS.md); EAR_WEIGHTS
     * overrides it (the test suites set f32: their contracts are PyTorch's float32 digits). */
    const char *weights = getenv("EAR_WEIGHTS");
    ear_error err;
    if (ear_nn_set_weight_type(weights && *weights ? weights : "int8", &err) != 0) {
        fprintf(stderr, "ear: EAR_WEIGHTS: %s\n", err.message);
        return EAR_EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "ear: unknown command '%s' (see `ear --help`)\n", argv[1]);
    return EAR_EXIT_USAGE;
}
