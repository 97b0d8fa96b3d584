/* ear index, ear search, and `ear info` for index files. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "index/index.h"
#include "index/search.h"

static const char index_help[] =
    "usage: ear index --model M --data DIR -o INDEX [--jobs N] [--dtype f32|f16]\n"
    "                 [--max-seconds S] [--weights T]\n\n"
    "Embeds a dataset into an index file: every frame with the model's image tower, every\n"
    "sound with its audio tower (where the model has them). DIR holds audio/<id>.<ext> and\n"
    "frames/<id>.<ext>, paired by <id>, and optionally labels.tsv (<id><TAB><label>).\n"
    "A file that cannot be read is reported and left out (the rest of its item stays); the\n"
    "index is written to a temporary file and renamed over INDEX only when complete.\n\n"
    "  --model M          the Ear model file\n"
    "  --data DIR         the dataset folder\n"
    "  -o, --output INDEX where to write\n"
    "  --jobs N           worker threads (default: every core)\n"
    "  --dtype T          storage of the embeddings: f32 (default) or f16 (half the size\n"
    "                     and search time; scores move by at most 5e-4)\n"
    "  --max-seconds S    embed at most the first S seconds of each sound (default 60; 0: all)\n"
    "  --weights T        f32, bf16 or int8: the model's matrix products and convolutions\n"
    "                     (default bf16 or $EAR_WEIGHTS; search with the same)\n"
    "  -h, --help         this text\n";

static const char search_help[] =
    "usage: ear search --model M --index INDEX [-k K] [--against frames|sounds]\n"
    "                  [--max-seconds S] [--weights T] FILE\n\n"
    "The K items nearest to a sound, as the JSON the HTTP service answers, on stdout.\n\n"
    "  --model M          the Ear model file (the one that built the index)\n"
    "  --index INDEX      the index file\n"
    "  -k K               how many results (default 8)\n"
    "  --against KIND     frames (default): the sound against the frames' embeddings;\n"
    "                     sounds: against the items' sound embeddings\n"
    "  --max-seconds S    decode at most S seconds of FILE (default 60; 0: all)\n"
    "  --weights T        f32, bf16 or int8 (default bf16 or $EAR_WEIGHTS)\n"
    "  -h, --help         this text\n";

/* Progress on stderr: a bar redrawn in place on a terminal, a plain line every
 * 10% or 5 s otherwise (logs, CI). */
typedef struct progress_display {
    int terminal;
    int bar_shown;           /* a bar is on the current line */
    double last_line_ms;
    size_t next_tenth;       /* plain lines: the next 10% step to report */
} progress_display;

static void format_duration(double seconds, char *out, size_t size)
{
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(out, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(out, size, "%ld:%02ld", s / 60, s % 60);
}

static void show_progress(void *user, size_t done, size_t total, double elapsed_ms)
{
    progress_display *p = user;
    double rate = elapsed_ms > 0 ? (double)done / (elapsed_ms / 1000.0) : 0;
    char left[32] = "?";
    if (rate > 0)
        format_duration((double)(total - done) / rate, left, sizeof left);
    if (p->terminal) {
        enum { WIDTH = 30 };
        char bar[WIDTH + 1];
        size_t filled = total ? done * WIDTH / total : WIDTH;
        for (size_t i = 0; i < WIDTH; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[WIDTH] = 0;
        fprintf(stderr, "\r\033[K[%s] %zu/%zu items  %.1f items/s  %s left", bar, done, total,
                rate, left);
        p->bar_shown = 1;
        if (done == total) {
            fputc('\n', stderr);
            p->bar_shown = 0;
        }
        fflush(stderr);
        return;
    }
    size_t tenth = total ? done * 10 / total : 10;
    if (tenth < p->next_tenth && elapsed_ms - p->last_line_ms < 5000 && done != total)
        return;
    if (done == total && p->next_tenth > 10)
        return; /* the 100% line is out already */
    fprintf(stderr, "ear index: %zu/%zu items (%zu%%), %.1f items/s, %s left\n", done, total,
            total ? done * 100 / total : 100, rate, left);
    p->last_line_ms = elapsed_ms;
    p->next_tenth = tenth + 1;
}

static void show_problem(void *user, const char *file, const char *reason)
{
    progress_display *p = user;
    if (p->bar_shown) {
        fputs("\r\033[K", stderr);
        p->bar_shown = 0;
    }
    fprintf(stderr, "ear index: skipped %s: %s\n", file, reason);
}

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

int ear_cli_index(int argc, char **argv)
{
    static const struct option options[] = {
        {"model", required_argument, 0, 'm'},       {"data", required_argument, 0, 'd'},
        {"output", required_argument, 0, 'o'},      {"jobs", required_argument, 0, 'j'},
        {"dtype", required_argument, 0, 't'},       {"max-seconds", required_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},              {"weights", required_argument, 0, 'w'},
        {0, 0, 0, 0}};
    const char *model_path = NULL, *data = NULL, *output = NULL;
    ear_error weights_err;
    ear_index_build_options o;
    ear_index_build_options_default(&o);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o.jobs = cores < 1 ? 1 : cores > 256 ? 256 : (int)cores;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "o:j:h", options, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'd': data = optarg; break;
        case 'o': output = optarg; break;
        case 'j':
            if (ear_cli_parse_int(optarg, 1, 256, &o.jobs) != 0)
                return ear_cli_usage_error("index", "--jobs must be 1 to 256");
            break;
        case 't':
            if (strcmp(optarg, "f32") == 0)
                o.dtype = EAR_INDEX_F32;
            else if (strcmp(optarg, "f16") == 0)
                o.dtype = EAR_INDEX_F16;
            else
                return ear_cli_usage_error("index", "--dtype must be f32 or f16");
            break;
        case 's':
            if (ear_cli_parse_double(optarg, 0, 86400, &o.max_seconds) != 0)
                return ear_cli_usage_error("index", "--max-seconds must be 0 to 86400");
            break;
        case 'w':
            if (ear_nn_set_weight_type(optarg, &weights_err) != 0)
                return ear_cli_usage_error("index", "--weights: %s", weights_err.message);
            break;
        case 'h': fputs(index_help, stdout); return EAR_EXIT_OK;
        default:
            return ear_cli_usage_error("index", "unknown option or missing value: '%s'",
                                       argv[optind - 1]);
        }
    }
    if (optind != argc)
        return ear_cli_usage_error("index", "unexpected argument '%s'", argv[optind]);
    if (!model_path || !data || !output)
        return ear_cli_usage_error("index", "--model, --data and -o are required");
    if (check_replaceable(output) != 0)
        return EAR_EXIT_FAILED;

    ear_error err;
    ear_nn_model *model = ear_nn_model_load(model_path, &err);
    if (!model)
        return ear_cli_fail(model_path, err.message);
    progress_display display = {.terminal = isatty(STDERR_FILENO), .next_tenth = 1};
    o.progress = show_progress;
    o.problem = show_problem;
    o.user = &display;
    ear_index_build_summary summary;
    int status = EAR_EXIT_OK;
    if (ear_index_build(model, data, output, &o, &summary, &err) != 0) {
        if (display.bar_shown)
            fputc('\n', stderr);
        status = ear_cli_fail("index", err.message);
    } else {
        fprintf(stderr,
                "ear index: wrote %s: %zu items (%zu frames, %zu sounds embedded) in %.1f s, "
                "%.1f items/s with %d jobs; %zu left out with nothing embedded, %zu files "
                "skipped\n",
                output, summary.items, summary.frames, summary.sounds,
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
    static const struct option options[] = {
        {"model", required_argument, 0, 'm'},   {"index", required_argument, 0, 'i'},
        {"against", required_argument, 0, 'a'}, {"max-seconds", required_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},          {"weights", required_argument, 0, 'w'},
        {0, 0, 0, 0}};
    const char *model_path = NULL, *index_path = NULL;
    ear_error weights_err;
    ear_search_request req = {.against = EAR_INDEX_FRAMES, .k = 8, .max_seconds = 60};
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "k:h", options, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'i': index_path = optarg; break;
        case 'k':
            if (ear_cli_parse_int(optarg, 1, 10000, &req.k) != 0)
                return ear_cli_usage_error("search", "-k must be 1 to 10000");
            break;
        case 'a':
            if (strcmp(optarg, "frames") == 0)
                req.against = EAR_INDEX_FRAMES;
            else if (strcmp(optarg, "sounds") == 0)
                req.against = EAR_INDEX_SOUNDS;
            else
                return ear_cli_usage_error("search", "--against must be frames or sounds");
            break;
        case 's':
            if (ear_cli_parse_double(optarg, 0, 86400, &req.max_seconds) != 0)
                return ear_cli_usage_error("search", "--max-seconds must be 0 to 86400");
            break;
        case 'w':
            if (ear_nn_set_weight_type(optarg, &weights_err) != 0)
                return ear_cli_usage_error("search", "--weights: %s", weights_err.message);
            break;
        case 'h': fputs(search_help, stdout); return EAR_EXIT_OK;
        default:
            return ear_cli_usage_error("search", "unknown option or missing value: '%s'",
                                       argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return ear_cli_usage_error("search", optind >= argc ? "no input FILE"
                                                            : "one input FILE only");
    if (!model_path || !index_path)
        return ear_cli_usage_error("search", "--model and --index are required");
    const char *input = argv[optind];

    ear_error err;
    ear_nn_model *model = NULL;
    ear_index *idx = NULL;
    ear_nn_session *session = NULL;
    uint8_t *audio = NULL;
    char *json = NULL;
    ear_search_result res = {0};
    int status = EAR_EXIT_FAILED;
    model = ear_nn_model_load(model_path, &err);
    if (!model) {
        ear_cli_fail(model_path, err.message);
        goto done;
    }
    idx = ear_index_open(index_path, ear_nn_model_fingerprint(model), &err);
    if (!idx) {
        ear_cli_fail("search", err.message);
        goto done;
    }
    session = ear_nn_session_create(model, &err);
    if (!session) {
        ear_cli_fail("search", err.message);
        goto done;
    }
    audio = ear_cli_read_file(input, &req.audio_size);
    if (!audio)
        goto done;
    req.audio = audio;
    req.model = model;
    res.hits = calloc((size_t)req.k, sizeof *res.hits);
    if (!res.hits) {
        ear_cli_fail("search", "out of memory");
        goto done;
    }
    if (ear_search_run(session, idx, &req, &res, &err) != EAR_SEARCH_OK) {
        ear_cli_fail(input, err.message);
        goto done;
    }
    json = ear_search_result_json(idx, &res);
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
        printf("  tables         verified (ids sorted and unique, rows consistent)\n");
    else
        status = ear_cli_fail(path, err.message);
    ear_index_close(idx);
    return status;
}
