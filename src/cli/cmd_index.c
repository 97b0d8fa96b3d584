/* ear index, ear search, and `ear info` for index files. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "index/index.h"
#include "query/query.h"

static const char index_help[] =
    "usage: ear index --model M --data DIR -o INDEX [--jobs N] [--dtype f32|f16]\n"
    "                 [--max-seconds S] [--weights T]\n"
    "       ear index --import indexed_db.pt --model M --data DIR -o INDEX [--dtype f32|f16]\n\n"
    "Embeds a dataset into an index file, every file its own item: every frame with the\n"
    "model's image tower, every sound with its audio tower. DIR in either layout (both may\n"
    "mix): the original service's, audio/<label>/**/<file> and frames/<label>/**/<file>\n"
    "(the label is the first folder), or Ear's flat one, audio/<id>.<ext> and\n"
    "frames/<id>.<ext> with an optional labels.tsv (<id><TAB><label>; else the label is\n"
    "the id). A file that cannot be read is reported and left out; the index is written\n"
    "to a temporary file and renamed over INDEX only when complete.\n\n"
    "  --model M          the Ear model file\n"
    "  --data DIR         the dataset folder\n"
    "  -o, --output INDEX where to write\n"
    "  --jobs N           worker threads (default: every core)\n"
    "  --dtype T          storage of the embeddings: f32 (default) or f16 (half the size\n"
    "                     and search time; scores move by at most 5e-4)\n"
    "  --max-seconds S    embed at most the first S seconds of each sound (default 60; 0: all)\n"
    "  --import PT        convert the original service's indexed_db.pt instead of embedding:\n"
    "                     its rows as they are, each URL /ear/data/<path> a file under DIR\n"
    "                     (every one must exist), the dimension the model's; which model made\n"
    "                     the vectors cannot be checked (it holds no fingerprint)\n"
    "  --weights T        f32, bf16 or int8: the model's matrix products and convolutions\n"
    "                     (default int8 or $EAR_WEIGHTS; search with the same)\n"
    "  -h, --help         this text\n";

static const char search_help[] =
    "usage: ear search --model M --index INDEX [-k K] [--kind audio|image|all]\n"
    "                  [--max-seconds S] [--data DIR] [--weights T] FILE\n\n"
    "The K items nearest to a sound or an image (JPEG, PNG: known from the bytes), as the\n"
    "JSON of POST /api/search, on stdout.\n\n"
    "  --model M          the Ear model file (the one that built the index)\n"
    "  --index INDEX      the index file (or the original's indexed_db.pt, with --data)\n"
    "  --data DIR         the dataset its URLs name (only for an indexed_db.pt)\n"
    "  -k K               how many results (default 8)\n"
    "  --kind KIND        the items searched: audio, image (default) or all\n"
    "  --against KIND     the older form: frames (image) or sounds (audio)\n"
    "  --max-seconds S    decode at most S seconds of FILE (default 60; 0: all)\n"
    "  --weights T        f32, bf16 or int8 (default int8 or $EAR_WEIGHTS)\n"
    "  -h, --help         this text\n";

/* Refuses to replace something that is not an index: -o pointing at a model
 * or a photo by mistake must not destroy it. */
static int check_replaceable(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char magic[8];
    ssize_t n = read(fd, magic, sizeof magic);
    close(fd);
    if (n == 0 || (n == 8 && memcmp(magic, EAR_INDEX_MAGIC, 8) == 0))
        return 0;
    ear_cli_fail(path, "exists and is not an Ear index: not replacing it");
    return -1;
}

/* ear index --import: the original's indexed_db.pt as an Ear index. Only the
 * model's configuration is read: its dimension is what can be checked. */
static int import_original(const char *pt, const char *model_path, const char *data,
                           const char *output, ear_index_dtype dtype)
{
    ear_error err;
    ear_nn_config config;
    if (ear_nn_model_read_config(model_path, &config, &err) != 0)
        return ear_cli_fail(model_path, err.message);
    ear_query_import_summary summary;
    if (ear_query_import_pt(pt, data, config.embed_dim, output, dtype, &summary, &err) != 0)
        return ear_cli_fail("index", err.message);
    fprintf(stderr,
            "ear index: wrote %s: %zu items (%zu images, %zu sounds) from %s; checked: the "
            "dimension (%d, the model's) and every file under %s; not checked: which model "
            "made the vectors (the original kept no fingerprint)\n",
            output, summary.items, summary.images, summary.sounds, pt, summary.dim, data);
    return EAR_EXIT_OK;
}

int ear_cli_index(int argc, char **argv)
{
    const char *model_path = NULL, *data = NULL, *output = NULL, *import = NULL;
    const char *dtype = "f32", *weights = NULL;
    ear_query_build_options o;
    ear_query_build_options_default(&o);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o.jobs = cores < 1 ? 1 : cores > 256 ? 256 : (int)cores;
    const ear_cli_option options[] = {
        {"model", EAR_CLI_OPT_STRING, 1, 0, &model_path, 0},
        {"data", EAR_CLI_OPT_STRING, 1, 0, &data, 0},
        {"output", EAR_CLI_OPT_STRING, 1, 0, &output, 'o'},
        {"jobs", EAR_CLI_OPT_INT, 1, 256, &o.jobs, 'j'},
        {"dtype", EAR_CLI_OPT_STRING, 1, 0, &dtype, 0},
        {"max-seconds", EAR_CLI_OPT_DOUBLE, 0, 86400, &o.max_seconds, 0},
        {"import", EAR_CLI_OPT_STRING, 1, 0, &import, 0},
        {"weights", EAR_CLI_OPT_STRING, 1, 0, &weights, 0},
    };
    int first = argc;
    int parsed = ear_cli_parse_options("index", argc, argv, options,
                                       sizeof options / sizeof options[0], index_help, &first);
    if (parsed >= 0)
        return parsed;
    if (first != argc)
        return ear_cli_usage_error("index", "unexpected argument '%s'", argv[first]);
    if (strcmp(dtype, "f32") == 0)
        o.dtype = EAR_INDEX_F32;
    else if (strcmp(dtype, "f16") == 0)
        o.dtype = EAR_INDEX_F16;
    else
        return ear_cli_usage_error("index", "--dtype must be f32 or f16");
    ear_error weights_err;
    if (weights && ear_nn_set_weight_type(weights, &weights_err) != 0)
        return ear_cli_usage_error("index", "--weights: %s", weights_err.message);
    if (!model_path || !data || !output)
        return ear_cli_usage_error("index", "--model, --data and -o are required");
    if (check_replaceable(output) != 0)
        return EAR_EXIT_FAILED;
    if (import)
        return import_original(import, model_path, data, output, o.dtype);

    ear_error err;
    ear_nn_model *model = ear_nn_model_load(model_path, &err);
    if (!model)
        return ear_cli_fail(model_path, err.message);
    ear_cli_progress display;
    ear_cli_progress_init(&display, "ear index");
    o.progress = ear_cli_progress_show;
    o.problem = ear_cli_progress_problem;
    o.user = &display;
    ear_query_build_summary summary;
    int status = EAR_EXIT_OK;
    if (ear_query_build_index(model, data, output, &o, &summary, &err) != 0) {
        if (display.bar_shown)
            fputc('\n', stderr);
        status = ear_cli_fail("index", err.message);
    } else {
        fprintf(stderr,
                "ear index: wrote %s: %zu items (%zu images, %zu sounds) in %.1f s, "
                "%.1f items/s with %d jobs; %zu files left out, %zu problems\n",
                output, summary.items, summary.images, summary.sounds,
                summary.elapsed_ms / 1000.0,
                summary.elapsed_ms > 0
                    ? (double)(summary.items + summary.skipped) / (summary.elapsed_ms / 1000.0)
                    : 0.0,
                o.jobs, summary.skipped, summary.problems);
    }
    ear_nn_model_free(model);
    return status;
}

int ear_cli_search(int argc, char **argv)
{
    const char *model_path = NULL, *index_path = NULL, *data_dir = NULL;
    const char *against = NULL, *kind = NULL, *weights = NULL;
    /* Images by default, as --against frames was before sounds were items. */
    ear_query_request req = {.kinds = EAR_INDEX_MASK(EAR_INDEX_IMAGE), .k = 8,
                             .upload = {.kind = -1, .max_seconds = 60}};
    const ear_cli_option options[] = {
        {"model", EAR_CLI_OPT_STRING, 1, 0, &model_path, 0},
        {"index", EAR_CLI_OPT_STRING, 1, 0, &index_path, 0},
        {"data", EAR_CLI_OPT_STRING, 1, 0, &data_dir, 0},
        {"k", EAR_CLI_OPT_INT, 1, 10000, &req.k, 'k'},
        {"against", EAR_CLI_OPT_STRING, 1, 0, &against, 0},
        {"kind", EAR_CLI_OPT_STRING, 1, 0, &kind, 0},
        {"max-seconds", EAR_CLI_OPT_DOUBLE, 0, 86400, &req.upload.max_seconds, 0},
        {"weights", EAR_CLI_OPT_STRING, 1, 0, &weights, 0},
    };
    int first = argc;
    int parsed = ear_cli_parse_options("search", argc, argv, options,
                                       sizeof options / sizeof options[0], search_help, &first);
    if (parsed >= 0)
        return parsed;
    if (against && strcmp(against, "frames") == 0)
        req.kinds = EAR_INDEX_MASK(EAR_INDEX_IMAGE);
    else if (against && strcmp(against, "sounds") == 0)
        req.kinds = EAR_INDEX_MASK(EAR_INDEX_AUDIO);
    else if (against)
        return ear_cli_usage_error("search", "--against must be frames or sounds");
    if (kind && strcmp(kind, "image") == 0)
        req.kinds = EAR_INDEX_MASK(EAR_INDEX_IMAGE);
    else if (kind && strcmp(kind, "audio") == 0)
        req.kinds = EAR_INDEX_MASK(EAR_INDEX_AUDIO);
    else if (kind && strcmp(kind, "all") == 0)
        req.kinds = EAR_INDEX_ALL;
    else if (kind)
        return ear_cli_usage_error("search", "--kind must be audio, image or all");
    ear_error weights_err;
    if (weights && ear_nn_set_weight_type(weights, &weights_err) != 0)
        return ear_cli_usage_error("search", "--weights: %s", weights_err.message);
    if (first != argc - 1)
        return ear_cli_usage_error("search", first >= argc ? "no input FILE"
                                                           : "one input FILE only");
    if (!model_path || !index_path)
        return ear_cli_usage_error("search", "--model and --index are required");
    const char *input = argv[first];

    ear_error err;
    ear_nn_model *model = NULL;
    ear_index *idx = NULL;
    ear_nn_session *session = NULL;
    uint8_t *audio = NULL;
    char *json = NULL;
    ear_query_result res = {0};
    int status = EAR_EXIT_FAILED;
    model = ear_nn_model_load(model_path, &err);
    if (!model) {
        ear_cli_fail(model_path, err.message);
        goto done;
    }
    char note[1024];
    idx = ear_query_open_index(index_path, data_dir ? data_dir : ".", model, note, sizeof note,
                               &err);
    if (!idx) {
        ear_cli_fail("search", err.message);
        goto done;
    }
    if (note[0])
        fprintf(stderr, "ear search: %s\n", note);
    session = ear_nn_session_create(model, &err);
    if (!session) {
        ear_cli_fail("search", err.message);
        goto done;
    }
    audio = ear_cli_read_file(input, &req.upload.size);
    if (!audio)
        goto done;
    req.upload.data = audio;
    req.upload.name = input;
    req.model = model;
    res.hits = calloc((size_t)req.k, sizeof *res.hits);
    if (!res.hits) {
        ear_cli_fail("search", "out of memory");
        goto done;
    }
    if (ear_query_run(session, idx, &req, &res, &err) != EAR_QUERY_OK) {
        ear_cli_fail(input, err.message);
        goto done;
    }
    json = ear_query_search_json(idx, &res);
    if (!json) {
        ear_cli_fail("search", "out of memory");
        goto done;
    }
    printf("%s\n", json);
    status = EAR_EXIT_OK;
done:
    free(json);
    free(res.hits);
    free(audio);
    ear_nn_session_free(session);
    ear_index_close(idx);
    ear_nn_model_free(model);
    return status;
}

int ear_cli_info_index(const char *path)
{
    ear_error err;
    ear_index *idx = ear_index_open(path, NULL, &err);
    if (!idx)
        return ear_cli_fail("info", err.message);
    ear_index_describe(idx, stdout);
    int status = EAR_EXIT_OK;
    if (ear_index_verify(idx, &err) == 0)
        printf("  tables         verified (paths sorted and unique, kinds known, rows "
               "consistent)\n");
    else
        status = ear_cli_fail(path, err.message);
    ear_index_close(idx);
    return status;
}
