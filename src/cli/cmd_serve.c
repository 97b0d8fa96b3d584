/* `ear serve`: the HTTP service. The signals are taken here, by sigwait in the
 * main thread (blocked everywhere else), so that no work happens in a handler. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "http/http.h"
#include "index/index.h"
#include "nn/nn.h"
#include "query/query.h"

static const char serve_help[] =
    "usage: ear serve --model M --index INDEX --data DIR [--host H] [--port P]\n"
    "                 [--workers N] [--queue Q] [--max-upload BYTES] [--max-seconds S]\n"
    "                 [--idle-timeout S] [--body-timeout S] [--max-connections C]\n"
    "                 [--threads T] [--drain S] [--home-url URL] [--weights T]\n"
    "                 [--decode-timeout S] [--max-body-memory BYTES] [--fill-columns]\n"
    "                 [--no-sandbox]\n"
    "       ear serve --project DIR [the options above but --model, --index, --data]\n"
    "\n"
    "The HTTP service: the web page at /, POST /api/search, the original service's\n"
    "POST /query, the dataset's files at /data/<path>, /api/config, /healthz and /metrics;\n"
    "every route also under /ear/.\n"
    "Prints \"listening on http://HOST:PORT\" on stderr once ready, then one line per request.\n"
    "SIGHUP reopens INDEX (kept as it was if the new file is refused); SIGTERM or SIGINT stop\n"
    "accepting, finish the requests in flight (up to --drain seconds) and exit 0.\n"
    "\n"
    "  --model M            the model file: an Ear model, or the original's\n"
    "                       best_audio_visual_clip.pt\n"
    "  --index INDEX        the index, built by `ear index` with the same model, or the\n"
    "                       original service's indexed_db.pt (read as it is)\n"
    "  --data DIR           the dataset folder (served at /data/)\n"
    "  --project DIR        a folder laid out as the original service's:\n"
    "                       DIR/pretrained_models/best_audio_visual_clip.pt, DIR/ear_data/\n"
    "                       and DIR/indexed_db.pt, served as it is; without indexed_db.pt the\n"
    "                       index is built (a progress bar on a terminal) into\n"
    "                       DIR/indexed_db.earindex and kept there for the next start\n"
    "  --host H             address to listen on (default 127.0.0.1)\n"
    "  --port P             port (default 5001; 0: any free port)\n"
    "  --workers N          search threads, each with its own model session (default 1)\n"
    "  --queue Q            searches that may wait for a worker; more answer 503 (default 16)\n"
    "  --max-upload BYTES   largest request body (default 52428800, 50 MiB); more answer 413\n"
    "  --max-seconds S      audio is cut after S seconds (default 60)\n"
    "  --idle-timeout S     close connections idle for S seconds (default 30)\n"
    "  --body-timeout S     a body still arriving S seconds after its request began\n"
    "                       answers 408 (default 120, nginx's proxy timeout)\n"
    "  --max-connections C  open connections at most (default 1000)\n"
    "  --threads T          BLAS threads for the whole process (default 1)\n"
    "  --weights T          f32, bf16 or int8: the model's matrix products and convolutions\n"
    "                       (default int8 or $EAR_WEIGHTS; as the index was built)\n"
    "  --drain S            at SIGTERM, wait at most S seconds for requests (default 30)\n"
    "  --home-url URL       the page's link back to the main site, given to it by\n"
    "                       GET /api/config as {\"home_url\": URL} (default /)\n"
    "  --decode-timeout S   an upload still decoding after S seconds answers 400 and its\n"
    "                       decoder process is replaced (default 5)\n"
    "  --max-body-memory BYTES  request bodies in flight together at most; past it 503\n"
    "                       with Retry-After (default 4 x --max-upload)\n"
    "  --fill-columns       POST /query answers the best 5 of each kind in its two columns;\n"
    "                       the original takes them from the best 100 of both together,\n"
    "                       which leaves a column short when one kind far outnumbers the\n"
    "                       other (the instrument demo: 2,286 sounds, 55 pictures)\n"
    "  --no-sandbox         decode uploads in this process, not in the sandboxed helper\n"
    "                       processes (to debug a decoder; never on a public service)\n"
    "  -h, --help           this text\n";

/* A project in the original's layout, its paths malloc'd. */
typedef struct project {
    char *model, *data, *original_index, *index;
} project;

static void project_free(project *p)
{
    free(p->model);
    free(p->data);
    free(p->original_index);
    free(p->index);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_folder(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The paths of DIR; which index is served is decided once the model is loaded. */
static int project_paths(const char *dir, project *p)
{
    memset(p, 0, sizeof *p);
    if (asprintf(&p->model, "%s/pretrained_models/best_audio_visual_clip.pt", dir) < 0 ||
        asprintf(&p->data, "%s/ear_data", dir) < 0 ||
        asprintf(&p->original_index, "%s/indexed_db.pt", dir) < 0 ||
        asprintf(&p->index, "%s/indexed_db.earindex", dir) < 0)
        return ear_cli_fail("serve", "out of memory");
    if (!is_folder(dir))
        return ear_cli_fail(dir, "no such folder");
    if (!is_file(p->model))
        return ear_cli_fail(dir, "not laid out as the original service's: no "
                                 "pretrained_models/best_audio_visual_clip.pt");
    if (!is_folder(p->data))
        return ear_cli_fail(dir, "not laid out as the original service's: no ear_data/ folder");
    return 0;
}

/* The index a project serves: the original's indexed_db.pt as it is (refused by
 * the server when it does not fit the model), else Ear's index beside it, built
 * when missing or when it no longer fits (another model, an older format), as the
 * original built indexed_db.pt when it was missing. */
static int project_index(project *p, const ear_nn_model *model, const char **index_path)
{
    if (is_file(p->original_index)) {
        *index_path = p->original_index;
        return 0;
    }
    *index_path = p->index;
    ear_error err;
    if (is_file(p->index)) {
        ear_index *idx = ear_query_open_index(p->index, p->data, model, NULL, 0, &err);
        if (idx) {
            ear_index_close(idx);
            return 0;
        }
        fprintf(stderr, "ear serve: %s does not fit: %s; building it again\n", p->index,
                err.message);
    }
    fprintf(stderr,
            "ear serve: no indexed_db.pt: building the index of %s into %s (as the original "
            "built its indexed_db.pt)\n",
            p->data, p->index);
    ear_query_build_options o;
    ear_query_build_options_default(&o);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o.jobs = cores < 1 ? 1 : cores > 64 ? 64 : (int)cores;
    /* The original cut every dataset sound at 10 s. */
    o.max_seconds = 10;
    ear_cli_progress display;
    ear_cli_progress_init(&display, "ear serve");
    o.progress = ear_cli_progress_show;
    o.problem = ear_cli_progress_problem;
    o.user = &display;
    ear_query_build_summary summary;
    if (ear_query_build_index(model, p->data, p->index, &o, &summary, &err) != 0) {
        if (display.bar_shown)
            fputc('\n', stderr);
        return ear_cli_fail("serve", err.message);
    }
    fprintf(stderr, "ear serve: indexed %zu items (%zu images, %zu sounds) in %.1f s\n",
            summary.items, summary.images, summary.sounds, summary.elapsed_ms / 1000.0);
    return 0;
}

int ear_cli_serve(int argc, char **argv)
{
    ear_http_options o;
    ear_http_options_default(&o);
    const char *model_path = NULL, *project_dir = NULL;
    int threads = 1;
    double drain_s = 30;
    const char *weights = NULL;
    const ear_cli_option options[] = {
        {"model", EAR_CLI_OPT_STRING, 1, 0, &model_path, 0},
        {"index", EAR_CLI_OPT_STRING, 1, 0, &o.index_path, 0},
        {"data", EAR_CLI_OPT_STRING, 1, 0, &o.data_dir, 0},
        {"project", EAR_CLI_OPT_STRING, 1, 0, &project_dir, 0},
        {"host", EAR_CLI_OPT_STRING, 1, 255, &o.host, 0},
        {"port", EAR_CLI_OPT_INT, 0, 65535, &o.port, 0},
        {"workers", EAR_CLI_OPT_INT, 1, 256, &o.workers, 0},
        {"queue", EAR_CLI_OPT_INT, 1, 1000000, &o.queue, 0},
        {"max-upload", EAR_CLI_OPT_BYTES, 1, 0, &o.max_upload, 0},
        {"max-seconds", EAR_CLI_OPT_DOUBLE, 0, 86400, &o.max_seconds, 0},
        {"idle-timeout", EAR_CLI_OPT_INT, 1, 86400, &o.idle_timeout_s, 0},
        {"body-timeout", EAR_CLI_OPT_INT, 1, 86400, &o.body_timeout_s, 0},
        {"max-connections", EAR_CLI_OPT_INT, 1, 1000000, &o.max_connections, 0},
        {"threads", EAR_CLI_OPT_INT, 1, 1024, &threads, 0},
        {"drain", EAR_CLI_OPT_DOUBLE, 0, 3600, &drain_s, 0},
        {"home-url", EAR_CLI_OPT_STRING, 1, 2048, &o.home_url, 0},
        {"weights", EAR_CLI_OPT_STRING, 1, 0, &weights, 0},
        {"decode-timeout", EAR_CLI_OPT_DOUBLE, 0.01, 3600, &o.decode_timeout_s, 0},
        {"max-body-memory", EAR_CLI_OPT_BYTES, 1, 0, &o.max_body_memory, 0},
        {"no-sandbox", EAR_CLI_OPT_FLAG, 0, 0, &o.no_sandbox, 0},
        {"fill-columns", EAR_CLI_OPT_FLAG, 0, 0, &o.fill_columns, 0},
    };
    int first_operand = argc;
    int parsed = ear_cli_parse_options("serve", argc, argv, options,
                                       sizeof options / sizeof options[0], serve_help,
                                       &first_operand);
    if (parsed >= 0)
        return parsed;
    if (first_operand != argc)
        return ear_cli_usage_error("serve", "unexpected argument '%s'", argv[first_operand]);
    if (weights) {
        ear_error weights_err;
        if (ear_nn_set_weight_type(weights, &weights_err) != 0)
            return ear_cli_usage_error("serve", "--weights: %s", weights_err.message);
    }
    if (project_dir && (model_path || o.index_path || o.data_dir))
        return ear_cli_usage_error("serve", "--project takes the place of --model, --index and "
                                            "--data");
    if (!project_dir && (!model_path || !o.index_path || !o.data_dir))
        return ear_cli_usage_error("serve", "--model, --index and --data are required (or "
                                            "--project)");
    project proj = {0};
    if (project_dir) {
        if (project_paths(project_dir, &proj) != 0) {
            project_free(&proj);
            return EAR_EXIT_FAILED;
        }
        model_path = proj.model;
        o.data_dir = proj.data;
    }

    /* Blocked before any thread starts, so that every thread inherits the
     * mask and only sigwait below ever sees these. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    ear_nn_set_threads(threads);

    ear_error err;
    int status = EAR_EXIT_FAILED;
    ear_http_server *server = NULL;
    ear_nn_model *model = NULL;
    /* Both towers when the index holds images (image queries, and sounds against
     * them, need the image tower too); the audio tower alone otherwise: a
     * ResNet-50 image tower is most of a model's memory. */
    int images = 1; /* a project, the original's indexed_db.pt: both towers */
    if (!project_dir && !ear_query_is_pt(o.index_path)) {
        ear_index *peek = ear_index_open(o.index_path, NULL, &err);
        if (!peek) {
            ear_cli_fail("serve", err.message);
            goto done;
        }
        images = ear_index_rows(peek, EAR_INDEX_IMAGE) > 0;
        ear_index_close(peek);
    }
    model = images ? ear_nn_model_load(model_path, &err)
                   : ear_nn_model_load_audio(model_path, &err);
    if (!model) {
        ear_cli_fail(model_path, err.message);
        goto done;
    }
    if (project_dir && project_index(&proj, model, &o.index_path) != 0)
        goto done;
    server = ear_http_server_start(model, &o, &err);
    if (!server) {
        ear_cli_fail("serve", err.message);
        goto done;
    }
    fprintf(stderr, "ear serve: listening on %s (%d workers, queue %d, model %s)\n",
            ear_http_server_url(server), o.workers, o.queue, ear_nn_model_fingerprint(model));
    for (;;) {
        int signal_number = 0;
        if (sigwait(&signals, &signal_number) != 0)
            continue;
        if (signal_number != SIGHUP) {
            fprintf(stderr, "ear serve: %s: finishing the requests in flight, then exiting\n",
                    signal_number == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
        if (ear_http_server_reload_index(server, &err) == 0)
            fprintf(stderr, "ear serve: SIGHUP: reopened the index %s\n", o.index_path);
        else
            fprintf(stderr, "ear serve: SIGHUP: still serving the previous index: %s\n",
                    err.message);
    }
    ear_http_server_shutdown(server, drain_s * 1000);
    fprintf(stderr, "ear serve: stopped\n");
    status = EAR_EXIT_OK;
done:
    ear_http_server_free(server);
    ear_nn_model_free(model);
    project_free(&proj);
    return status;
}
