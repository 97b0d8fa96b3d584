/* GET /metrics: request counters by route and status, a latency histogram per
 * route, and gauges, in Prometheus's text exposition format (version 0.0.4). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/internal.h"

/* Upper bounds of the latency buckets in seconds; the last bucket is +Inf. */
static const double bucket_bounds[EAR_HTTP_LATENCY_BUCKETS - 1] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

static const char *const route_names[EAR_HTTP_ROUTE_COUNT] = {
    "page", "web", "search", "frames", "audio", "data", "healthz", "metrics", "redirect",
    "examples", "config", "query", "unknown"};

const char *ear_http_route_name(ear_http_route route)
{
    return (unsigned)route < EAR_HTTP_ROUTE_COUNT ? route_names[route] : "unknown";
}

int ear_http_metrics_init(ear_http_metrics *m, ear_error *err)
{
    memset(m, 0, sizeof *m);
    if (pthread_mutex_init(&m->lock, NULL) != 0)
        return ear_error_set(err, "metrics: cannot create a mutex");
    return 0;
}

void ear_http_metrics_destroy(ear_http_metrics *m)
{
    pthread_mutex_destroy(&m->lock);
}

void ear_http_metrics_record(ear_http_metrics *m, ear_http_route route, unsigned status,
                             double seconds)
{
    if ((unsigned)route >= EAR_HTTP_ROUTE_COUNT)
        route = EAR_HTTP_ROUTE_UNKNOWN;
    if (seconds < 0)
        seconds = 0;
    size_t bucket = 0;
    while (bucket < EAR_HTTP_LATENCY_BUCKETS - 1 && seconds > bucket_bounds[bucket])
        bucket++;
    pthread_mutex_lock(&m->lock);
    if (status >= 100 && status < 600)
        m->requests[route][status - 100]++;
    else
        m->aborted[route]++;
    m->latency_buckets[route][bucket]++;
    m->latency_count[route]++;
    m->latency_sum_s[route] += seconds;
    pthread_mutex_unlock(&m->lock);
}

long long ear_http_resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f)
        return -1;
    long long size, resident;
    int read = fscanf(f, "%lld %lld", &size, &resident);
    fclose(f);
    if (read != 2)
        return -1;
    return resident * sysconf(_SC_PAGESIZE);
}

/* A growing text buffer; a failed append marks it failed and later ones do nothing. */
typedef struct text_buffer {
    char *data;
    size_t length, capacity;
    int failed;
} text_buffer;

__attribute__((format(printf, 2, 3))) static void append(text_buffer *b, const char *format, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, format);
        int n = vsnprintf(b->data + b->length, b->capacity - b->length, format, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->capacity - b->length) {
            b->length += (size_t)n;
            return;
        }
        size_t capacity = b->capacity * 2 + (size_t)n;
        char *grown = realloc(b->data, capacity);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->capacity = capacity;
    }
}

char *ear_http_metrics_text(ear_http_metrics *m, const ear_http_gauges *g, size_t *length)
{
    text_buffer b = {malloc(4096), 0, 4096, 0};
    if (!b.data)
        return NULL;
    b.data[0] = 0;
    /* A copy, so that formatting happens outside the lock the requests take. */
    ear_http_metrics *copy = malloc(sizeof *copy);
    if (!copy) {
        free(b.data);
        return NULL;
    }
    pthread_mutex_lock(&m->lock);
    memcpy(copy->requests, m->requests, sizeof m->requests);
    memcpy(copy->aborted, m->aborted, sizeof m->aborted);
    memcpy(copy->latency_buckets, m->latency_buckets, sizeof m->latency_buckets);
    memcpy(copy->latency_count, m->latency_count, sizeof m->latency_count);
    memcpy(copy->latency_sum_s, m->latency_sum_s, sizeof m->latency_sum_s);
    pthread_mutex_unlock(&m->lock);

    append(&b, "# HELP ear_http_requests_total HTTP requests answered, by route and status "
               "(\"aborted\": the client went away first).\n"
               "# TYPE ear_http_requests_total counter\n");
    for (int r = 0; r < EAR_HTTP_ROUTE_COUNT; r++) {
        for (int s = 0; s < 500; s++)
            if (copy->requests[r][s])
                append(&b, "ear_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                       route_names[r], s + 100, (unsigned long long)copy->requests[r][s]);
        if (copy->aborted[r])
            append(&b, "ear_http_requests_total{route=\"%s\",status=\"aborted\"} %llu\n",
                   route_names[r], (unsigned long long)copy->aborted[r]);
    }
    append(&b, "# HELP ear_http_request_duration_seconds Time from a request's headers to the "
               "end of its answer, by route.\n"
               "# TYPE ear_http_request_duration_seconds histogram\n");
    for (int r = 0; r < EAR_HTTP_ROUTE_COUNT; r++) {
        if (!copy->latency_count[r])
            continue;
        uint64_t cumulative = 0;
        for (int i = 0; i < EAR_HTTP_LATENCY_BUCKETS - 1; i++) {
            cumulative += copy->latency_buckets[r][i];
            append(&b, "ear_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                   route_names[r], bucket_bounds[i], (unsigned long long)cumulative);
        }
        append(&b,
               "ear_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
               "ear_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
               "ear_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
               route_names[r], (unsigned long long)copy->latency_count[r], route_names[r],
               copy->latency_sum_s[r], route_names[r],
               (unsigned long long)copy->latency_count[r]);
    }
    append(&b,
           "# HELP ear_search_queue_depth Searches waiting for a worker.\n"
           "# TYPE ear_search_queue_depth gauge\n"
           "ear_search_queue_depth %zu\n"
           "# HELP ear_search_queue_capacity Searches that may wait before the service answers "
           "503.\n"
           "# TYPE ear_search_queue_capacity gauge\n"
           "ear_search_queue_capacity %zu\n"
           "# HELP ear_searches_running Searches being run by a worker.\n"
           "# TYPE ear_searches_running gauge\n"
           "ear_searches_running %zu\n"
           "# HELP ear_search_workers Search worker threads.\n"
           "# TYPE ear_search_workers gauge\n"
           "ear_search_workers %d\n"
           "# HELP ear_index_items Items in the index being searched.\n"
           "# TYPE ear_index_items gauge\n"
           "ear_index_items %zu\n",
           g->queue_depth, g->queue_capacity, g->running, g->workers, g->index_items);
    if (g->resident_bytes >= 0)
        append(&b,
               "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
               "# TYPE process_resident_memory_bytes gauge\n"
               "process_resident_memory_bytes %lld\n",
               g->resident_bytes);
    free(copy);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    *length = b.length;
    return b.data;
}
