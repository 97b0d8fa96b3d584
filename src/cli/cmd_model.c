/* ear embed, ear info: a model's embeddings of one file, and what a model or index file
 * holds. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"
#include "cli/cli.h"
#include "image/image.h"
#include "nn/nn.h"

static const char embed_help[] =
    "usage: ear embed --model M (--audio FILE | --image FILE) -o OUT.npy [options]\n\n"
    "The embedding of one sound or one image by an Ear model: a unit vector, float32\n"
    "[embed_dim], written as .npy. A sound longer than the model's segment is cut into\n"
    "segments whose unit vectors are averaged and renormalised.\n\n"
    "  --model M              the Ear model file (required)\n"
    "  --audio FILE           a sound in any supported format (WebM/Opus, Ogg, MP4/AAC, MP3,\n"
    "                         WAV, FLAC), decoded at the model's sample rate\n"
    "  --image FILE           a JPEG or PNG\n"
    "  -o, --output OUT.npy   where to write (required)\n"
    "  --max-seconds S        decode at most S seconds of sound (default 60; 0: no cap)\n"
    "  --threads N            BLAS threads (default 1)\n"
    "  --weights T            f32, bf16 or int8: the model's matrix products and\n"
    "                         convolutions (default int8, or $EAR_WEIGHTS)\n"
    "  --no-sandbox           decode in this process, not in a sandboxed helper (to debug)\n"
    "  -h, --help             this text\n";

static const char info_help[] =
    "usage: ear info FILE\n\n"
    "What an Ear model or index file holds. A model is checked in full (every tensor, as\n"
    "loading does) and described: configuration, parameters, bytes, dtypes, fingerprint.\n"
    "An index is described and its tables verified. A torch.save .pt file that is not a\n"
    "model Ear runs is read safely and its entries, tensors and dtypes listed.\n\n"
    "  -h, --help             this text\n";

typedef struct embed_args {
    const char *model, *audio, *image, *output, *weights;
    ear_audio_decode_options decode;
    int threads;
    int no_sandbox;
} embed_args;

/* Returns -1 to go on, or the exit status to return. */
static int parse_embed_args(int argc, char **argv, embed_args *a)
{
    static const struct option options[] = {
        {"model", required_argument, 0, 'm'},       {"audio", required_argument, 0, 'a'},
        {"image", required_argument, 0, 'i'},       {"output", required_argument, 0, 'o'},
        {"max-seconds", required_argument, 0, 's'}, {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},              {"weights", required_argument, 0, 'w'},
        {"no-sandbox", no_argument, 0, 'N'},
        {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    ear_audio_decode_options_default(&a->decode);
    a->threads = 1;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
        switch (c) {
        case 'm': a->model = optarg; break;
        case 'a': a->audio = optarg; break;
        case 'i': a->image = optarg; break;
        case 'o': a->output = optarg; break;
        case 'w': a->weights = optarg; break;
        case 's':
            if (ear_cli_parse_double(optarg, 0, 86400, &a->decode.max_seconds) != 0)
                return ear_cli_usage_error("embed", "--max-seconds must be 0 to 86400");
            break;
        case 't':
            if (ear_cli_parse_int(optarg, 1, 256, &a->threads) != 0)
                return ear_cli_usage_error("embed", "--threads must be 1 to 256");
            break;
        case 'N': a->no_sandbox = 1; break;
        case 'h': fputs(embed_help, stdout); return EAR_EXIT_OK;
        default:
            return ear_cli_usage_error("embed", "unknown option or missing value: '%s'",
                                       argv[optind - 1]);
        }
    }
    if (optind != argc)
        return ear_cli_usage_error("embed", "unexpected argument '%s'", argv[optind]);
    if (!a->model)
        return ear_cli_usage_error("embed", "--model M is required");
    if (!a->audio == !a->image)
        return ear_cli_usage_error("embed", "give one of --audio FILE and --image FILE");
    if (!a->output)
        return ear_cli_usage_error("embed", "-o OUT.npy is required");
    return -1;
}

/* The embedding of a->audio or a->image into embedding; prints the error line on failure. */
static int embed_file(const embed_args *a, const ear_nn_model *model, float *embedding)
{
    const ear_nn_config *config = ear_nn_model_config(model);
    const char *input = a->audio ? a->audio : a->image;
    if (a->audio ? !config->has_audio : !config->has_image) {
        ear_cli_fail(a->model, a->audio ? "the model has no audio tower"
                                        : "the model has no image tower");
        return -1;
    }
    ear_error err;
    ear_nn_session *session = NULL;
    ear_audio_clip clip = {0};
    ear_image img = {0};
    int rc = -1;
    size_t size = 0;
    uint8_t *data = ear_cli_read_file(input, &size);
    if (!data)
        goto done;
    if (a->audio) {
        ear_audio_decode_options decode = a->decode;
        ear_nn_model_decode_options(model, &decode);
        if (ear_cli_decode_audio(data, size, &decode, !a->no_sandbox, &clip, &err) != 0) {
            ear_cli_fail(input, err.message);
            goto done;
        }
        if (clip.truncated)
            fprintf(stderr, "ear: %s: longer than %g s, embedded the first %g s only\n", input,
                    decode.max_seconds, decode.max_seconds);
    } else if (ear_cli_decode_image(data, size, !a->no_sandbox, &img, &err) != 0) {
        ear_cli_fail(input, err.message);
        goto done;
    }
    session = ear_nn_session_create(model, &err);
    if (!session) {
        ear_cli_fail(a->model, err.message);
        goto done;
    }
    if (a->audio ? ear_nn_embed_audio(session, clip.samples, clip.count, embedding, &err)
                 : ear_nn_embed_image(session, &img, embedding, &err)) {
        ear_cli_fail(input, err.message);
        goto done;
    }
    rc = 0;
done:
    ear_nn_session_free(session);
    ear_image_free(&img);
    ear_audio_clip_free(&clip);
    free(data);
    return rc;
}

int ear_cli_embed(int argc, char **argv)
{
    embed_args a;
    int status = parse_embed_args(argc, argv, &a);
    if (status >= 0)
        return status;
    ear_nn_set_threads(a.threads);
    ear_error err;
    if (a.weights && ear_nn_set_weight_type(a.weights, &err) != 0)
        return ear_cli_usage_error("embed", "--weights: %s", err.message);
    /* Only the tower the file needs: most of the original model's memory is the other one. */
    ear_nn_model *model = a.audio ? ear_nn_model_load_audio(a.model, &err)
                                  : ear_nn_model_load_image(a.model, &err);
    if (!model) {
        fprintf(stderr, "ear: %s\n", err.message);
        return EAR_EXIT_FAILED;
    }
    status = EAR_EXIT_FAILED;
    size_t dim = (size_t)ear_nn_model_config(model)->embed_dim;
    float *embedding = malloc(dim * sizeof *embedding);
    if (!embedding) {
        ear_cli_fail("embed", "out of memory");
        goto done;
    }
    if (embed_file(&a, model, embedding) != 0)
        goto done;
    if (ear_npy_write_f32(a.output, embedding, 1, &dim, &err) != 0) {
        ear_cli_fail("write", err.message);
        goto done;
    }
    status = EAR_EXIT_OK;
done:
    free(embedding);
    ear_nn_model_free(model);
    return status;
}

static int info_model(const char *path, int zip)
{
    ear_error err;
    ear_nn_model *model = ear_nn_model_load(path, &err);
    if (!model && zip) /* a torch.save file, but no model Ear runs: what it holds */
        return ear_cli_info_pt(path, err.message);
    if (!model) {
        fprintf(stderr, "ear: %s\n", err.message);
        return EAR_EXIT_FAILED;
    }
    ear_nn_model_describe(model, stdout);
    ear_nn_model_free(model);
    return EAR_EXIT_OK;
}

/* The kinds of file `ear info` knows, by their first bytes. A model (safetensors) has no
 * magic: it starts with its header's length, so it is what is left. */
typedef struct info_kind {
    const char *magic;
    int (*describe)(const char *path);
} info_kind;

static const info_kind info_kinds[] = {
    {"EARINDEX", ear_cli_info_index},
};

int ear_cli_info(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(info_help, stdout);
        return EAR_EXIT_OK;
    }
    if (argc != 2 || argv[1][0] == '-')
        return ear_cli_usage_error("info", argc < 2 ? "no FILE" : "one FILE, no options");
    const char *path = argv[1];
    unsigned char head[8] = {0};
    size_t got = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        got = fread(head, 1, sizeof head, f);
        fclose(f);
    }
    for (size_t i = 0; i < sizeof info_kinds / sizeof info_kinds[0]; i++) {
        size_t length = strlen(info_kinds[i].magic);
        if (got >= length && memcmp(head, info_kinds[i].magic, length) == 0)
            return info_kinds[i].describe(path);
    }
    /* also says why a file cannot be opened */
    return info_model(path, got >= 4 && memcmp(head, "PK\3\4", 4) == 0);
}
