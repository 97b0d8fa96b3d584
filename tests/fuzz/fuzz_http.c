/* The HTTP request path on arbitrary bytes: request line, headers, query
 * strings, Range and conditional headers, data-file names, raw and
 * multipart/chunked search bodies, pipelined requests.
 *
 * Why a real server and not the parsing functions: most of the parsing is
 * libmicrohttpd's (request line, headers, chunked bodies, the multipart post
 * processor), interleaved with Ear's callbacks (routing, the streaming body
 * limits, the multipart field gathering, the worker hand-off and the resumed
 * connection), and the bugs worth finding are in how those meet. So one
 * `ear serve` runs in-process for the whole session (a tiny model and index
 * made at start-up), and each input is written to it over a loopback TCP
 * connection, read back until the server closes it. (A socketpair handed to
 * MHD_add_connection would save the ports, but libmicrohttpd then takes other
 * paths: no TCP_CORK/NODELAY, different flushing; TCP is what clients use.)
 * The pure helpers (unescape, Range, ETag, dates, k, file names, request ids)
 * are also fed the input directly. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "fuzz.h"
#include "http/internal.h"

#ifndef EAR_FUZZ_SOURCE_DIR
#define EAR_FUZZ_SOURCE_DIR "."
#endif

/* An input that neither gets its answer nor its connection closed by then is a hang. */
#define EAR_FUZZ_HTTP_DEADLINE_MS 20000
/* Silence after an answer that ends an input (see below). */
#define EAR_FUZZ_HTTP_QUIET_MS 100

static ear_nn_model *model;
static ear_http_server *server;
static char work_dir[256];

static void copy_file(const char *from, const char *to)
{
    ear_error err = {{0}};
    size_t size;
    uint8_t *data = ear_file_read(from, (size_t)1 << 24, &size, &err);
    EAR_FUZZ_REQUIRE(data, err.message);
    EAR_FUZZ_REQUIRE(ear_file_write_atomic(to, data, size, &err) == 0, err.message);
    free(data);
}

static void stop_server(void)
{
    ear_http_server_free(server);
    server = NULL;
    ear_nn_model_free(model);
    model = NULL;
    if (work_dir[0]) {
        char command[512];
        snprintf(command, sizeof command, "rm -rf '%s'", work_dir);
        if (system(command) != 0)
            fprintf(stderr, "fuzz harness: could not remove %s\n", work_dir);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *source = getenv("EAR_SOURCE_DIR");
    if (!source || !*source)
        source = EAR_FUZZ_SOURCE_DIR;
    char path[1024], to[1024];
    ear_error err = {{0}};
    snprintf(path, sizeof path, "%s/tests/fixtures/nn/nn_basic_f32.safetensors", source);
    model = ear_nn_model_load(path, &err);
    EAR_FUZZ_REQUIRE(model, err.message);

    const char *tmp = getenv("TMPDIR");
    snprintf(work_dir, sizeof work_dir, "%s/ear-fuzz-http.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    EAR_FUZZ_REQUIRE(mkdtemp(work_dir), "mkdtemp failed");
    atexit(stop_server);
    snprintf(path, sizeof path, "%s/data", work_dir);
    EAR_FUZZ_REQUIRE(mkdir(path, 0755) == 0, "mkdir data");
    snprintf(path, sizeof path, "%s/data/frames", work_dir);
    EAR_FUZZ_REQUIRE(mkdir(path, 0755) == 0, "mkdir frames");
    snprintf(path, sizeof path, "%s/data/audio", work_dir);
    EAR_FUZZ_REQUIRE(mkdir(path, 0755) == 0, "mkdir audio");
    snprintf(path, sizeof path, "%s/tests/fixtures/image/photo_77x52.jpg", source);
    snprintf(to, sizeof to, "%s/data/frames/cow.jpg", work_dir);
    copy_file(path, to);
    snprintf(path, sizeof path, "%s/tests/fixtures/image/tiny_20x13.png", source);
    snprintf(to, sizeof to, "%s/data/frames/cat.png", work_dir);
    copy_file(path, to);
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/audio/sine.wav", source);
    snprintf(to, sizeof to, "%s/data/audio/cow.wav", work_dir);
    copy_file(path, to);

    /* The index: made-up unit vectors are as good as real ones for parsing. */
    int dim = ear_nn_model_config(model)->embed_dim;
    float *vectors = calloc((size_t)dim * 3, sizeof *vectors);
    EAR_FUZZ_REQUIRE(vectors, "out of memory");
    for (int i = 0; i < 3; i++)
        vectors[(size_t)i * dim + (size_t)(i % dim)] = 1;
    ear_index_entry entries[] = {
        {EAR_INDEX_IMAGE, "frames/cow.jpg", "A cow.", vectors},
        {EAR_INDEX_AUDIO, "audio/cow.wav", "A cow.", vectors + dim},
        {EAR_INDEX_IMAGE, "frames/cat.png", NULL, vectors + 2 * dim},
    };
    snprintf(path, sizeof path, "%s/ear.index", work_dir);
    EAR_FUZZ_REQUIRE(ear_index_write(path, ear_nn_model_fingerprint(model), dim, EAR_INDEX_F32,
                                     entries, 3, &err) == 0,
                     err.message);
    free(vectors);

    ear_http_options o;
    ear_http_options_default(&o);
    char data_dir[512];
    snprintf(data_dir, sizeof data_dir, "%s/data", work_dir);
    o.port = 0;
    o.index_path = path;
    o.data_dir = data_dir;
    o.queue = 4;
    o.max_upload = (size_t)1 << 20; /* small, so that the 413 paths are reachable */
    o.max_seconds = 5;
    /* An incomplete body waits for the idle timeout (libmicrohttpd does not
     * end a request at the client's half-close): keep it short. */
    o.idle_timeout_s = 1;
    o.body_timeout_s = 1;
    server = ear_http_server_start(model, &o, &err);
    EAR_FUZZ_REQUIRE(server, err.message);
    return 0;
}

/* The pure helpers, each on the input as a string. */
static void fuzz_helpers(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    EAR_FUZZ_REQUIRE(text, "out of memory");
    memcpy(text, data, size);
    text[size] = 0;
    uint64_t first = 0, last = 0, file_size = size * 7 + (size ? data[0] : 0);
    ear_http_range_kind kind = ear_http_parse_range(text, file_size, &first, &last);
    if (kind == EAR_HTTP_RANGE_PARTIAL)
        EAR_FUZZ_REQUIRE(first <= last && last < file_size, "a range inside the file");
    (void)ear_http_etag_matches(text, "\"abc-12\"");
    time_t when;
    if (ear_http_parse_date(text, &when) == 0) {
        char date[32];
        ear_http_format_date(date, sizeof date, when);
    }
    int k = 0;
    if (ear_http_parse_k(text, &k) == 0)
        EAR_FUZZ_REQUIRE(k >= 1 && k <= 50, "k from 1 to 50");
    if (ear_http_request_id_is_sane(text))
        EAR_FUZZ_REQUIRE(strlen(text) <= 64, "an id of at most 64 bytes");
    size_t length = ear_http_unescape(text);
    EAR_FUZZ_REQUIRE(length <= size && text[length] == 0, "unescaping never grows");
    if (ear_http_file_name_is_safe(text))
        EAR_FUZZ_REQUIRE(!strstr(text, "..") && !strchr(text, '/') && text[0] != '.',
                         "a safe name has no way out of the folder");
    (void)ear_http_content_type(text);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_helpers(data, size);

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EAR_FUZZ_REQUIRE(fd >= 0, "socket failed");
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons((uint16_t)ear_http_server_port(server));
    EAR_FUZZ_REQUIRE(connect(fd, (struct sockaddr *)&address, sizeof address) == 0,
                     "cannot connect to the server");
    /* Closing with a reset leaves no TIME_WAIT behind: thousands of inputs a
     * minute would otherwise use up the loopback's ports. */
    struct linger reset = {1, 0};
    EAR_FUZZ_REQUIRE(setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset) == 0,
                     "SO_LINGER");
    EAR_FUZZ_REQUIRE(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0, "O_NONBLOCK");
    /* Write the request while reading the answers (the server may answer, or
     * close, before it has read everything), then half-close and read to EOF. */
    size_t sent = 0, received = 0;
    int write_open = 1;
    double deadline = ear_now_ms() + EAR_FUZZ_HTTP_DEADLINE_MS;
    char buffer[65536];
    for (;;) {
        if (write_open && sent == size) {
            shutdown(fd, SHUT_WR);
            write_open = 0;
        }
        struct pollfd p = {fd, (short)(POLLIN | (write_open ? POLLOUT : 0)), 0};
        int left = (int)(deadline - ear_now_ms());
        EAR_FUZZ_REQUIRE(left > 0, "the server neither answered nor closed the connection");
        /* libmicrohttpd keeps a kept-alive connection open after the client's
         * half-close until the idle timeout; once answers have come, a pause
         * means they are all in, and the reset that ends the input is a client
         * going away, a path worth taking too. */
        int ready = poll(&p, 1, received && !write_open && left > EAR_FUZZ_HTTP_QUIET_MS
                                    ? EAR_FUZZ_HTTP_QUIET_MS
                                    : left);
        if (ready < 0 && errno == EINTR)
            continue;
        EAR_FUZZ_REQUIRE(ready >= 0, "poll failed");
        if (ready == 0 && received && !write_open)
            break;
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, buffer, sizeof buffer, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break; /* closed by the server: this input is done */
            if (n > 0)
                received += (size_t)n;
        }
        if (write_open && (p.revents & POLLOUT)) {
            ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                write_open = 0; /* the server stopped reading; its answer may follow */
        }
    }
    close(fd);
    return 0;
}
