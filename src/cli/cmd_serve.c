/* `ear serve`: the HTTP service. The signals are taken here, by sigwait in the
 * main thread (blocked everywhere else), so that no work happens in a handler. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "http/http.h"
#include "index/index.h"
#include "nn/nn.h"

static const char serve_help[] =
    "usage: ear serve --model M --index INDEX --data DIR [--host H] [--port P]\n"
    "                 [--workers N] [--queue Q] [--max-upload BYTES] [--max-seconds S]\n"
    "                 [--idle-timeout S] [--body-timeout S] [--max-connections C]\n"
    "                 [--threads T] [--drain S] [--decode-timeout S] [--max-body-memory BYTES]\n"
    "                 [--no-sandbox]\n"
    "\n"
    "The HTTP service: the web page at /, POST /api/search, the dataset's files at\n"
    "/data/frames/ and /data/audio/, /healthz and /metrics; every route also under /ear/.\n"
    "Prints \"listening on http://HOST:PORT\" on stderr once ready, then one line per request.\n"
    "SIGHUP reopens INDEX (kept as it was if the new file is refused); SIGTERM or SIGINT stop\n"
    "accepting, finish the requests in flight (up to --drain seconds) and exit 0.\n"
    "\n"
    "  --model M            the Ear model file (with an audio tower)\n"
    "  --index INDEX        the index, built by `ear index` with the same model\n"
    "  --data DIR           the dataset folder (frames/ and audio/ are served)\n"
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
    "  --drain S            at SIGTERM, wait at most S seconds for requests (default 30)\n"
    "  --decode-timeout S   an upload still decoding after S seconds answers 400 and its\n"
    "                       decoder process is replaced (default 5)\n"
    "  --max-body-memory BYTES  request bodies in flight together at most; past it 503\n"
    "                       with Retry-After (default 4 x --max-upload)\n"
    "  --no-sandbox         decode uploads in this process, not in the sandboxed helper\n"
    "                       processes (to debug a decoder; never on a public service)\n"
    "  -h, --help           this text\n";

/* Reads a byte count: digits with an optional K, M or G suffix (powers of 1024). */
static int parse_bytes(const char *text, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || text[0] == '-')
        return -1;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    if (shift)
        end++;
    if (*end || v == 0 || v > (1ull << 40) >> shift)
        return -1;
    *out = (size_t)(v << shift);
    return 0;
}

int ear_cli_serve(int argc, char **argv)
{
    enum {
        OPT_MODEL = 256, OPT_INDEX, OPT_DATA, OPT_HOST, OPT_PORT, OPT_WORKERS, OPT_QUEUE,
        OPT_MAX_UPLOAD, OPT_MAX_SECONDS, OPT_IDLE, OPT_BODY_TIMEOUT, OPT_CONNECTIONS, OPT_THREADS, OPT_DRAIN,
        OPT_DECODE_TIMEOUT, OPT_MAX_BODY_MEMORY, OPT_NO_SANDBOX
    };
    static const struct option options[] = {
        {"model", required_argument, 0, OPT_MODEL},
        {"index", required_argument, 0, OPT_INDEX},
        {"data", required_argument, 0, OPT_DATA},
        {"host", required_argument, 0, OPT_HOST},
        {"port", required_argument, 0, OPT_PORT},
        {"workers", required_argument, 0, OPT_WORKERS},
        {"queue", required_argument, 0, OPT_QUEUE},
        {"max-upload", required_argument, 0, OPT_MAX_UPLOAD},
        {"max-seconds", required_argument, 0, OPT_MAX_SECONDS},
        {"idle-timeout", required_argument, 0, OPT_IDLE},
        {"body-timeout", required_argument, 0, OPT_BODY_TIMEOUT},
        {"max-connections", required_argument, 0, OPT_CONNECTIONS},
        {"threads", required_argument, 0, OPT_THREADS},
        {"drain", required_argument, 0, OPT_DRAIN},
        {"decode-timeout", required_argument, 0, OPT_DECODE_TIMEOUT},
        {"max-body-memory", required_argument, 0, OPT_MAX_BODY_MEMORY},
        {"no-sandbox", no_argument, 0, OPT_NO_SANDBOX},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    ear_http_options o;
    ear_http_options_default(&o);
    const char *model_path = NULL;
    int threads = 1;
    double drain_s = 30;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
        case OPT_MODEL: model_path = optarg; break;
        case OPT_INDEX: o.index_path = optarg; break;
        case OPT_DATA: o.data_dir = optarg; break;
        case OPT_HOST: o.host = optarg; break;
        case OPT_PORT:
            if (ear_cli_parse_int(optarg, 0, 65535, &o.port) != 0)
                return ear_cli_usage_error("serve", "--port must be 0 to 65535");
            break;
        case OPT_WORKERS:
            if (ear_cli_parse_int(optarg, 1, 256, &o.workers) != 0)
                return ear_cli_usage_error("serve", "--workers must be 1 to 256");
            break;
        case OPT_QUEUE:
            if (ear_cli_parse_int(optarg, 1, 1000000, &o.queue) != 0)
                return ear_cli_usage_error("serve", "--queue must be 1 to 1000000");
            break;
        case OPT_MAX_UPLOAD:
            if (parse_bytes(optarg, &o.max_upload) != 0)
                return ear_cli_usage_error("serve", "--max-upload must be a byte count from 1 "
                                                    "to 1T (a K, M or G suffix is allowed)");
            break;
        case OPT_MAX_SECONDS:
            if (ear_cli_parse_double(optarg, 0, 86400, &o.max_seconds) != 0)
                return ear_cli_usage_error("serve", "--max-seconds must be 0 to 86400");
            break;
        case OPT_IDLE:
            if (ear_cli_parse_int(optarg, 1, 86400, &o.idle_timeout_s) != 0)
                return ear_cli_usage_error("serve", "--idle-timeout must be 1 to 86400");
            break;
        case OPT_BODY_TIMEOUT:
            if (ear_cli_parse_int(optarg, 1, 86400, &o.body_timeout_s) != 0)
                return ear_cli_usage_error("serve", "--body-timeout must be 1 to 86400");
            break;
        case OPT_CONNECTIONS:
            if (ear_cli_parse_int(optarg, 1, 1000000, &o.max_connections) != 0)
                return ear_cli_usage_error("serve", "--max-connections must be 1 to 1000000");
            break;
        case OPT_THREADS:
            if (ear_cli_parse_int(optarg, 1, 1024, &threads) != 0)
                return ear_cli_usage_error("serve", "--threads must be 1 to 1024");
            break;
        case OPT_DRAIN:
            if (ear_cli_parse_double(optarg, 0, 3600, &drain_s) != 0)
                return ear_cli_usage_error("serve", "--drain must be 0 to 3600");
            break;
        case OPT_DECODE_TIMEOUT:
            if (ear_cli_parse_double(optarg, 0.01, 3600, &o.decode_timeout_s) != 0)
                return ear_cli_usage_error("serve", "--decode-timeout must be 0.01 to 3600");
            break;
        case OPT_MAX_BODY_MEMORY:
            if (parse_bytes(optarg, &o.max_body_memory) != 0)
                return ear_cli_usage_error("serve", "--max-body-memory must be a byte count from "
                                                    "1 to 1T (a K, M or G suffix is allowed)");
            break;
        case OPT_NO_SANDBOX: o.no_sandbox = 1; break;
        case 'h': fputs(serve_help, stdout); return EAR_EXIT_OK;
        default:
            return ear_cli_usage_error("serve", "unknown option or missing value: '%s'",
                                       argv[optind - 1]);
        }
    }
    if (optind != argc)
        return ear_cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    if (!model_path || !o.index_path || !o.data_dir)
        return ear_cli_usage_error("serve", "--model, --index and --data are required");

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
    ear_nn_model *model = ear_nn_model_load_audio(model_path, &err); /* sounds only */
    if (!model) {
        ear_cli_fail(model_path, err.message);
        goto done;
    }
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
    return status;
}
