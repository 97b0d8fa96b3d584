/* The compute backend on oneDNN: the one file that knows it. It owns the engine, one stream
 * per calling thread, the primitives (created once per shape and kept) and the weights,
 * reordered once at load into the blocked layout the kernels read.
 *
 * Shapes: oneDNN 2.6's fast matrix kernels (brgemm) need every dimension fixed when the
 * primitive is made, and a request's row count (frames of a clip) varies. So each matmul
 * keeps a small table of primitives by row count, made on first use and kept for the model's
 * life (oneDNN's own cache shares the generated code between layers of one shape). The
 * weights' layout is fixed by the max_rows primitive and imposed on every other one.
 *
 * int8: oneDNN 2.6 cannot scale its output per row in a fast kernel (a per-row binary
 * post-op falls back to its reference code), so the u8 x s8 product lands as s32 in scratch
 * and one pass here applies the row and column scales, the zero point, bias, residual and
 * activation (GELU through a oneDNN eltwise primitive, vectorised). */
#include "nn/backend.h"

#include <dlfcn.h>
#include <dnnl.h>
#include <dnnl_debug.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Distinct row counts one matmul keeps primitives for; beyond, rows are split over kept ones. */
#define MAX_PLANS 48
#define ALIGN 64

/* ---------------------------------------------------------------- engine, streams, threads */

static dnnl_engine_t engine;
static dnnl_status_t engine_status = dnnl_success;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static pthread_key_t stream_key;
static atomic_int backend_threads = 1;
/* libgomp's, when oneDNN was built on OpenMP (Debian's is); looked up, not linked, so that
 * nothing but oneDNN decides which OpenMP the process loads. */
static void (*omp_set_threads)(int);
static int (*omp_max_threads)(void);
/* The largest u8 activation: 255 where the CPU multiplies u8 x s8 with VNNI (exact s32
 * sums); 127 elsewhere, where the pairwise u8 x s8 products are summed in saturating int16
 * (vpmaddubsw: 2 x 255 x 127 would overflow), as PyTorch's reduce_range. */
static float u8_max = 255.0f;

static void free_stream(void *stream)
{
    dnnl_stream_destroy(stream);
}

static void engine_init(void)
{
    engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0);
    if (engine_status == dnnl_success && pthread_key_create(&stream_key, free_stream) != 0)
        engine_status = dnnl_out_of_memory;
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    int vnni = isa == dnnl_cpu_isa_avx512_core_vnni || isa == dnnl_cpu_isa_avx512_core_bf16 ||
               isa == dnnl_cpu_isa_avx512_core_amx || isa == dnnl_cpu_isa_avx2_vnni;
    u8_max = vnni ? 255.0f : 127.0f;
    *(void **)&omp_set_threads = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    *(void **)&omp_max_threads = dlsym(RTLD_DEFAULT, "omp_get_max_threads");
}

static int dnnl_failed(dnnl_status_t status, const char *what, ear_error *err)
{
    return ear_error_set(err, "oneDNN: %s: %s", what, dnnl_status2str(status));
}

static int engine_ready(ear_error *err)
{
    pthread_once(&engine_once, engine_init);
    if (engine_status != dnnl_success)
        return dnnl_failed(engine_status, "no CPU engine", err);
    return 0;
}

/* The calling thread's stream (made once per thread), with its OpenMP thread count set: an
 * OpenMP team size is per thread, so every worker thread is told, not just the first. */
static dnnl_stream_t thread_stream(ear_error *err)
{
    if (engine_ready(err) < 0)
        return NULL;
    dnnl_stream_t stream = pthread_getspecific(stream_key);
    if (!stream) {
        dnnl_status_t status = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
        if (status != dnnl_success) {
            dnnl_failed(status, "stream", err);
            return NULL;
        }
        pthread_setspecific(stream_key, stream);
    }
    int threads = atomic_load(&backend_threads);
    if (omp_set_threads && omp_max_threads && omp_max_threads() != threads)
        omp_set_threads(threads);
    return stream;
}

static atomic_int default_weights = EAR_NN_WEIGHTS_F32;

void ear_nn_backend_set_weights(ear_nn_weights weights)
{
    atomic_store(&default_weights, (int)weights);
}

ear_nn_weights ear_nn_backend_weights(void)
{
    return (ear_nn_weights)atomic_load(&default_weights);
}

void ear_nn_backend_set_threads(int threads)
{
    atomic_store(&backend_threads, threads < 1 ? 1 : threads);
}

/* ---------------------------------------------------------------- names */

int ear_nn_weights_parse(const char *name, ear_nn_weights *weights, ear_error *err)
{
    if (name && !strcmp(name, "f32"))
        *weights = EAR_NN_WEIGHTS_F32;
    else if (name && !strcmp(name, "bf16"))
        *weights = EAR_NN_WEIGHTS_BF16;
    else if (name && !strcmp(name, "int8"))
        *weights = EAR_NN_WEIGHTS_INT8;
    else
        return ear_error_set(err, "unknown weight type '%s' (f32, bf16 or int8)",
                             name ? name : "(null)");
    return 0;
}

const char *ear_nn_weights_name(ear_nn_weights weights)
{
    switch (weights) {
    case EAR_NN_WEIGHTS_BF16:
        return "bf16";
    case EAR_NN_WEIGHTS_INT8:
        return "int8";
    default:
        return "f32";
    }
}

/* ---------------------------------------------------------------- matmul */

/* The primitives for one row count and one epilogue, with memory objects to reuse while
 * nobody else runs them (busy taken by trylock; a second thread makes its own for the run). */
typedef struct plan {
    int rows, accumulate;
    int width; /* convolutions: rows is the input's height */
    ear_nn_activation act;
    dnnl_primitive_t matmul;
    dnnl_primitive_t eltwise; /* int8 with GELU: in place on y */
    size_t scratchpad;        /* bytes of the matmul's oneDNN scratchpad */
    pthread_mutex_t busy;
    dnnl_memory_t mem[6];     /* src, weights, bias, dst, scratchpad, eltwise data */
} plan;

struct ear_nn_matmul {
    int out_features, in_features, max_rows;
    ear_nn_weights weights;
    dnnl_memory_desc_t weight_md; /* the laid-out weights; every primitive reads this one */
    void *weight;
    size_t weight_bytes;
    float *bias;          /* [out] or NULL */
    float *column_scale;  /* int8: per output channel */
    float *column_offset; /* int8: scale * sum of the channel's quantised weights */
    size_t scratchpad_bytes; /* reserved in the caller's scratch for oneDNN */
    pthread_mutex_t lock;    /* guards plans and plan_count */
    plan *plans[MAX_PLANS];
    int plan_count;
};

static size_t align_up(size_t n)
{
    return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

static dnnl_data_type_t source_type(ear_nn_weights w)
{
    return w == EAR_NN_WEIGHTS_BF16 ? dnnl_bf16 : w == EAR_NN_WEIGHTS_INT8 ? dnnl_u8 : dnnl_f32;
}

static dnnl_data_type_t weight_type(ear_nn_weights w)
{
    return w == EAR_NN_WEIGHTS_BF16 ? dnnl_bf16 : w == EAR_NN_WEIGHTS_INT8 ? dnnl_s8 : dnnl_f32;
}

static int plain_md(dnnl_memory_desc_t *md, int rows, int columns, dnnl_data_type_t type)
{
    dnnl_dims_t dims = {rows, columns};
    return dnnl_memory_desc_init_by_tag(md, 2, dims, type, dnnl_ab) == dnnl_success ? 0 : -1;
}

/* The matmul primitive descriptor for rows rows; weights in mm->weight_md (or any layout
 * while it is still unset, to learn the kernel's preferred one). */
static dnnl_status_t matmul_pd(const ear_nn_matmul *mm, int rows, int accumulate,
                               ear_nn_activation act, int any_weights,
                               dnnl_primitive_desc_t *pd)
{
    int int8 = mm->weights == EAR_NN_WEIGHTS_INT8;
    dnnl_memory_desc_t src, wei, bias, dst;
    dnnl_dims_t wdims = {mm->in_features, mm->out_features}, bdims = {1, mm->out_features};
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_status_t s;
    if (plain_md(&src, rows, mm->in_features, source_type(mm->weights)) < 0 ||
        plain_md(&dst, rows, mm->out_features, int8 ? dnnl_s32 : dnnl_f32) < 0 ||
        dnnl_memory_desc_init_by_tag(&bias, 2, bdims, dnnl_f32, dnnl_ab) != dnnl_success)
        return dnnl_invalid_arguments;
    if (any_weights)
        s = dnnl_memory_desc_init_by_tag(&wei, 2, wdims, weight_type(mm->weights),
                                         dnnl_format_tag_any);
    else {
        wei = mm->weight_md;
        s = dnnl_success;
    }
    dnnl_matmul_desc_t desc;
    if (s == dnnl_success)
        s = dnnl_matmul_desc_init(&desc, &src, &wei, !int8 && mm->bias ? &bias : NULL, &dst);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_create(&attr);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (s == dnnl_success && !int8) {
        s = dnnl_post_ops_create(&ops);
        if (s == dnnl_success && accumulate)
            s = dnnl_post_ops_append_sum(ops, 1.0f);
        if (s == dnnl_success && act != EAR_NN_ACT_NONE)
            s = dnnl_post_ops_append_eltwise(ops, 1.0f,
                                             act == EAR_NN_ACT_RELU ? dnnl_eltwise_relu
                                                                    : dnnl_eltwise_gelu_erf,
                                             0.0f, 0.0f);
        if (s == dnnl_success)
            s = dnnl_primitive_attr_set_post_ops(attr, ops);
    }
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(pd, &desc, attr, engine, NULL);
    if (ops)
        dnnl_post_ops_destroy(ops);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return s;
}

/* Whether oneDNN fell back to its reference code (scalar loops, ~100x slower than a JIT kernel):
 * what a bf16 or int8 layer gets on a CPU without the instructions (no AVX-512, valgrind). */
static int is_reference(const_dnnl_primitive_desc_t pd)
{
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl)
        return 0;
    return strncmp(impl, "ref", 3) == 0;
}

static size_t pd_scratchpad(const_dnnl_primitive_desc_t pd)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    return md ? dnnl_memory_desc_get_size(md) : 0;
}

static void plan_free(plan *p)
{
    if (!p)
        return;
    if (p->matmul)
        dnnl_primitive_destroy(p->matmul);
    if (p->eltwise)
        dnnl_primitive_destroy(p->eltwise);
    for (int i = 0; i < 6; i++)
        if (p->mem[i])
            dnnl_memory_destroy(p->mem[i]);
    pthread_mutex_destroy(&p->busy);
    free(p);
}

/* Memory objects for a plan's primitives, without data (handles are set per run). */
static dnnl_status_t plan_memories(const ear_nn_matmul *mm, dnnl_primitive_desc_t mpd,
                                   dnnl_primitive_desc_t epd, dnnl_memory_t mem[6])
{
    dnnl_query_t queries[5] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_weights_md,
                               dnnl_query_dst_md, dnnl_query_scratchpad_md};
    for (int i = 0; i < 5; i++) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(mpd, queries[i], i == 2);
        if (!md || (i == 2 && !mm->bias) || (i == 2 && mm->weights == EAR_NN_WEIGHTS_INT8))
            continue;
        dnnl_status_t s = dnnl_memory_create(&mem[i], md, engine, DNNL_MEMORY_NONE);
        if (s != dnnl_success)
            return s;
    }
    if (epd) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(epd, dnnl_query_src_md, 0);
        return dnnl_memory_create(&mem[5], md, engine, DNNL_MEMORY_NONE);
    }
    return dnnl_success;
}

static plan *plan_create(const ear_nn_matmul *mm, int rows, int accumulate,
                         ear_nn_activation act, ear_error *err)
{
    plan *p = calloc(1, sizeof *p);
    dnnl_primitive_desc_t mpd = NULL, epd = NULL;
    if (!p) {
        ear_error_set(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->busy, NULL);
    p->rows = rows;
    p->accumulate = accumulate;
    p->act = act;
    dnnl_status_t s = matmul_pd(mm, rows, accumulate, act, 0, &mpd);
    if (s == dnnl_success)
        s = dnnl_primitive_create(&p->matmul, mpd);
    if (s == dnnl_success && mm->weights == EAR_NN_WEIGHTS_INT8 && act == EAR_NN_ACT_GELU) {
        dnnl_memory_desc_t data;
        dnnl_eltwise_desc_t desc;
        s = plain_md(&data, rows, mm->out_features, dnnl_f32) < 0 ? dnnl_invalid_arguments
                                                                   : dnnl_success;
        if (s == dnnl_success)
            s = dnnl_eltwise_forward_desc_init(&desc, dnnl_forward_inference,
                                               dnnl_eltwise_gelu_erf, &data, 0.0f, 0.0f);
        if (s == dnnl_success)
            s = dnnl_primitive_desc_create(&epd, &desc, NULL, engine, NULL);
        if (s == dnnl_success)
            s = dnnl_primitive_create(&p->eltwise, epd);
    }
    if (s == dnnl_success)
        s = plan_memories(mm, mpd, epd, p->mem);
    if (s != dnnl_success) {
        dnnl_failed(s, "matmul primitive", err);
        goto fail;
    }
    p->scratchpad = pd_scratchpad(mpd);
    if (p->scratchpad > mm->scratchpad_bytes) {
        ear_error_set(err, "oneDNN: matmul of %d rows wants %zu bytes of scratchpad, %zu planned",
                      rows, p->scratchpad, mm->scratchpad_bytes);
        goto fail;
    }
    dnnl_primitive_desc_destroy(mpd);
    if (epd)
        dnnl_primitive_desc_destroy(epd);
    return p;
fail:
    if (mpd)
        dnnl_primitive_desc_destroy(mpd);
    if (epd)
        dnnl_primitive_desc_destroy(epd);
    plan_free(p);
    return NULL;
}

/* The kept plan for exactly these rows and epilogue, made now if there is room; NULL with
 * *full set when the table is full (the caller splits the rows), NULL otherwise on error. */
static plan *plan_get(ear_nn_matmul *mm, int rows, int accumulate, ear_nn_activation act,
                      int *full, ear_error *err)
{
    plan *found = NULL;
    *full = 0;
    pthread_mutex_lock(&mm->lock);
    for (int i = 0; i < mm->plan_count && !found; i++) {
        plan *p = mm->plans[i];
        if (p->rows == rows && p->accumulate == accumulate && p->act == act)
            found = p;
    }
    if (!found && mm->plan_count == MAX_PLANS)
        *full = 1;
    else if (!found && (found = plan_create(mm, rows, accumulate, act, err)))
        mm->plans[mm->plan_count++] = found;
    pthread_mutex_unlock(&mm->lock);
    return found;
}

/* The largest kept plan of this epilogue with at most rows rows (rows 1 is always made
 * first, so there is one). */
static plan *plan_at_most(ear_nn_matmul *mm, int rows, int accumulate, ear_nn_activation act)
{
    plan *best = NULL;
    pthread_mutex_lock(&mm->lock);
    for (int i = 0; i < mm->plan_count; i++) {
        plan *p = mm->plans[i];
        if (p->rows <= rows && p->accumulate == accumulate && p->act == act &&
            (!best || p->rows > best->rows))
            best = p;
    }
    pthread_mutex_unlock(&mm->lock);
    return best;
}

static void matmul_destroy(ear_nn_matmul *mm)
{
    for (int i = 0; i < mm->plan_count; i++)
        plan_free(mm->plans[i]);
    pthread_mutex_destroy(&mm->lock);
    free(mm->weight);
    free(mm->bias);
    free(mm->column_scale);
    free(mm->column_offset);
    free(mm);
}

void ear_nn_matmul_free(ear_nn_matmul *mm)
{
    if (mm)
        matmul_destroy(mm);
}

/* Reorders plain weights (dims {in, out} laid out as torch's [out][in], of the given type)
 * into mm->weight_md, converting the type if needed. */
static dnnl_status_t reorder_weights(ear_nn_matmul *mm, const void *plain, dnnl_data_type_t type)
{
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {mm->in_features, mm->out_features};
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t from = NULL, to = NULL;
    dnnl_stream_t stream = thread_stream(NULL);
    dnnl_status_t s = stream ? dnnl_memory_desc_init_by_tag(&md, 2, dims, type, dnnl_ba)
                             : dnnl_runtime_error;
    if (s == dnnl_success)
        s = dnnl_reorder_primitive_desc_create(&rpd, &md, engine, &mm->weight_md, engine, NULL);
    if (s == dnnl_success)
        s = dnnl_primitive_create(&reorder, rpd);
    if (s == dnnl_success)
        s = dnnl_memory_create(&from, &md, engine, (void *)plain);
    if (s == dnnl_success)
        s = dnnl_memory_create(&to, &mm->weight_md, engine, mm->weight);
    if (s == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
        s = dnnl_primitive_execute(reorder, stream, 2, args);
    }
    if (s == dnnl_success)
        s = dnnl_stream_wait(stream);
    if (from)
        dnnl_memory_destroy(from);
    if (to)
        dnnl_memory_destroy(to);
    if (reorder)
        dnnl_primitive_destroy(reorder);
    if (rpd)
        dnnl_primitive_desc_destroy(rpd);
    return s;
}

/* int8 weights: symmetric per output channel (scale = max |w| / 127), plain [out][in]. */
static int8_t *quantize_weights(ear_nn_matmul *mm, const float *weight)
{
    int in = mm->in_features, out = mm->out_features;
    int8_t *q = malloc((size_t)out * (size_t)in);
    mm->column_scale = malloc((size_t)out * sizeof *mm->column_scale);
    mm->column_offset = malloc((size_t)out * sizeof *mm->column_offset);
    if (!q || !mm->column_scale || !mm->column_offset) {
        free(q);
        return NULL;
    }
    for (int o = 0; o < out; o++) {
        const float *w = weight + (size_t)o * (size_t)in;
        int8_t *d = q + (size_t)o * (size_t)in;
        float amax = 0;
        for (int i = 0; i < in; i++)
            amax = fabsf(w[i]) > amax ? fabsf(w[i]) : amax;
        float scale = amax > 0 ? amax / 127.0f : 1.0f;
        long sum = 0;
        for (int i = 0; i < in; i++) {
            d[i] = (int8_t)lrintf(w[i] / scale);
            sum += d[i];
        }
        mm->column_scale[o] = scale;
        mm->column_offset[o] = scale * (float)sum;
    }
    return q;
}

ear_nn_matmul *ear_nn_matmul_create(const float *weight, const float *bias, int out_features,
                                    int in_features, int max_rows, ear_nn_weights weights,
                                    ear_error *err)
{
    if (out_features < 1 || in_features < 1 || max_rows < 1 || !weight ||
        (weights != EAR_NN_WEIGHTS_F32 && weights != EAR_NN_WEIGHTS_BF16 &&
         weights != EAR_NN_WEIGHTS_INT8)) {
        ear_error_set(err, "matmul: bad shape %d x %d, %d rows, or weight type", out_features,
                      in_features, max_rows);
        return NULL;
    }
    if (engine_ready(err) < 0)
        return NULL;
    ear_nn_matmul *mm = calloc(1, sizeof *mm);
    dnnl_primitive_desc_t pd = NULL;
    int8_t *quantized = NULL;
    if (!mm) {
        ear_error_set(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&mm->lock, NULL);
    mm->out_features = out_features;
    mm->in_features = in_features;
    mm->max_rows = max_rows;
    mm->weights = weights;
    /* The kernel's preferred weight layout, at the largest row count. */
    dnnl_status_t s = matmul_pd(mm, max_rows, 0, EAR_NN_ACT_NONE, 1, &pd);
    if (weights != EAR_NN_WEIGHTS_F32 && (s == dnnl_unimplemented || (s == dnnl_success &&
                                                                      is_reference(pd)))) {
        /* This CPU has no kernel for the type: float32, exact and fast, rather than none. */
        if (s == dnnl_success)
            dnnl_primitive_desc_destroy(pd);
        pd = NULL;
        mm->weights = weights = EAR_NN_WEIGHTS_F32;
        s = matmul_pd(mm, max_rows, 0, EAR_NN_ACT_NONE, 1, &pd);
    }
    if (s != dnnl_success) {
        dnnl_failed(s, "matmul", err);
        goto fail;
    }
    mm->weight_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_desc_destroy(pd);
    pd = NULL;
    mm->weight_bytes = dnnl_memory_desc_get_size(&mm->weight_md);
    if (posix_memalign(&mm->weight, ALIGN, align_up(mm->weight_bytes)) != 0) {
        mm->weight = NULL;
        goto oom;
    }
    memset(mm->weight, 0, align_up(mm->weight_bytes)); /* blocked layouts' padding: zeros */
    if (bias) {
        mm->bias = malloc((size_t)out_features * sizeof *mm->bias);
        if (!mm->bias)
            goto oom;
        memcpy(mm->bias, bias, (size_t)out_features * sizeof *bias);
    }
    if (weights == EAR_NN_WEIGHTS_INT8) {
        quantized = quantize_weights(mm, weight);
        if (!quantized)
            goto oom;
        s = reorder_weights(mm, quantized, dnnl_s8);
    } else {
        s = reorder_weights(mm, weight, dnnl_f32); /* to bf16 too: rounded to nearest even */
    }
    free(quantized);
    quantized = NULL;
    if (s != dnnl_success) {
        dnnl_failed(s, "weight reorder", err);
        goto fail;
    }
    /* oneDNN's scratchpad for any row count: the largest over powers of two up to max_rows
     * (it grows with the row blocks, which stop growing early), with room to spare. */
    for (int rows = 1;; rows = rows * 2 < max_rows ? rows * 2 : max_rows) {
        for (int act = EAR_NN_ACT_NONE; act <= EAR_NN_ACT_GELU; act++) {
            s = matmul_pd(mm, rows, 1, (ear_nn_activation)act, 0, &pd);
            if (s != dnnl_success) {
                dnnl_failed(s, "matmul", err);
                goto fail;
            }
            size_t bytes = pd_scratchpad(pd);
            dnnl_primitive_desc_destroy(pd);
            pd = NULL;
            if (bytes > mm->scratchpad_bytes)
                mm->scratchpad_bytes = bytes;
        }
        if (rows == max_rows)
            break;
    }
    /* GELU's eltwise (int8) needs none at these sizes; keep a margin for other kernels. */
    mm->scratchpad_bytes = align_up(mm->scratchpad_bytes + mm->scratchpad_bytes / 2 + 4096);
    return mm;
oom:
    ear_error_set(err, "out of memory");
fail:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    free(quantized);
    matmul_destroy(mm);
    return NULL;
}

/* Scratch: [source rows converted][s32 products (int8)][row scales (int8)][oneDNN's]. */
static size_t source_bytes(const ear_nn_matmul *mm)
{
    size_t element = mm->weights == EAR_NN_WEIGHTS_F32 ? 4 : mm->weights == EAR_NN_WEIGHTS_BF16 ? 2 : 1;
    return align_up((size_t)mm->max_rows * (size_t)mm->in_features * element);
}

static size_t product_bytes(const ear_nn_matmul *mm)
{
    if (mm->weights != EAR_NN_WEIGHTS_INT8)
        return 0;
    return align_up((size_t)mm->max_rows * (size_t)mm->out_features * sizeof(int32_t)) +
           align_up((size_t)mm->max_rows * 2 * sizeof(float));
}

size_t ear_nn_matmul_scratch_bytes(const ear_nn_matmul *mm)
{
    return source_bytes(mm) + product_bytes(mm) + mm->scratchpad_bytes + ALIGN;
}

size_t ear_nn_matmul_weight_bytes(const ear_nn_matmul *mm)
{
    size_t per_channel = (mm->bias ? 1 : 0) + (mm->column_scale ? 2 : 0);
    return mm->weight_bytes + (size_t)mm->out_features * per_channel * sizeof(float);
}

int ear_nn_matmul_out_features(const ear_nn_matmul *mm)
{
    return mm->out_features;
}

int ear_nn_matmul_in_features(const ear_nn_matmul *mm)
{
    return mm->in_features;
}

/* float32 -> bfloat16, rounded to nearest even (what oneDNN and torch do). */
static void to_bf16(const float *restrict x, uint16_t *restrict out, int n)
{
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u);
        out[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
}

/* Rounds to the nearest integer, ties to even, for |v| < 2^22: adding and taking away 1.5 * 2^23
 * leaves no fraction bits. Unlike nearbyintf (a libm call without SSE4.1), it vectorises at
 * the baseline x86-64 ISA. */
static inline float round_even(float v)
{
    const float magic = 12582912.0f; /* exact without -ffast-math, which Ear never uses */
    return (v + magic) - magic;
}

/* One row to u8 with its own scale and zero point: x ~ (q - zero) * scale, 0 exact. */
static void quantize_row(const float *restrict x, uint8_t *restrict out, int n, float *scale,
                         float *zero)
{
    float lo = 0.0f, hi = 0.0f;
    for (int i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    float top = u8_max;
    float s = hi > lo ? (hi - lo) / top : 1.0f;
    float z = nearbyintf(-lo / s);
    float inverse = 1.0f / s;
    for (int i = 0; i < n; i++) {
        float q = round_even(x[i] * inverse) + z;
        out[i] = (uint8_t)(int)(q < 0.0f ? 0.0f : q > top ? top : q);
    }
    *scale = s;
    *zero = z;
}

/* int8's epilogue on one row: y = act(sx * (sw * p - zero * offset) + bias (+ y)); GELU is
 * left to the eltwise primitive. */
static void dequantize_row(const ear_nn_matmul *mm, const int32_t *restrict p, float scale,
                           float zero, float *restrict y, int accumulate, int relu)
{
    const float *restrict cs = mm->column_scale, *restrict co = mm->column_offset;
    const float *restrict bias = mm->bias;
    float zs = zero * scale;
    for (int o = 0; o < mm->out_features; o++) {
        float v = scale * cs[o] * (float)p[o] - zs * co[o];
        if (bias)
            v += bias[o];
        if (accumulate)
            v += y[o];
        y[o] = relu && v < 0.0f ? 0.0f : v;
    }
}

/* Runs one plan on rows [0, p->rows) of prepared source, into y (or the s32 products). */
static int plan_run(const ear_nn_matmul *mm, plan *p, const void *source, float *y,
                    int32_t *products, const float *row_scales, void *scratchpad,
                    dnnl_stream_t stream, ear_error *err)
{
    dnnl_memory_t own[6] = {0}, *mem = p->mem;
    int locked = pthread_mutex_trylock(&p->busy) == 0;
    dnnl_status_t s = dnnl_success;
    if (!locked) { /* another thread runs this plan now: memory objects of our own */
        for (int i = 0; i < 6 && s == dnnl_success; i++) {
            if (!p->mem[i])
                continue;
            const dnnl_memory_desc_t *md;
            s = dnnl_memory_get_memory_desc(p->mem[i], &md);
            if (s == dnnl_success)
                s = dnnl_memory_create(&own[i], md, engine, DNNL_MEMORY_NONE);
        }
        mem = own;
    }
    void *handles[6] = {(void *)source, mm->weight, mm->bias,
                        products ? (void *)products : (void *)y, scratchpad, y};
    for (int i = 0; i < 6 && s == dnnl_success; i++)
        if (mem[i])
            s = dnnl_memory_set_data_handle_v2(mem[i], handles[i], stream);
    int args[5] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST,
                   DNNL_ARG_SCRATCHPAD};
    dnnl_exec_arg_t exec[5];
    int count = 0;
    for (int i = 0; i < 5; i++)
        if (mem[i])
            exec[count++] = (dnnl_exec_arg_t){args[i], mem[i]};
    if (s == dnnl_success)
        s = dnnl_primitive_execute(p->matmul, stream, count, exec);
    if (s == dnnl_success && products) {
        s = dnnl_stream_wait(stream);
        for (int r = 0; r < p->rows; r++)
            dequantize_row(mm, products + (size_t)r * (size_t)mm->out_features,
                           row_scales[2 * r], row_scales[2 * r + 1],
                           y + (size_t)r * (size_t)mm->out_features, p->accumulate,
                           p->act == EAR_NN_ACT_RELU);
        if (p->eltwise && s == dnnl_success) {
            dnnl_exec_arg_t e[2] = {{DNNL_ARG_SRC, mem[5]}, {DNNL_ARG_DST, mem[5]}};
            s = dnnl_primitive_execute(p->eltwise, stream, 2, e);
        }
    }
    if (s == dnnl_success)
        s = dnnl_stream_wait(stream);
    if (locked)
        pthread_mutex_unlock(&p->busy);
    for (int i = 0; i < 6; i++)
        if (own[i])
            dnnl_memory_destroy(own[i]);
    return s == dnnl_success ? 0 : dnnl_failed(s, "matmul", err);
}

int ear_nn_matmul_run(const ear_nn_matmul *cmm, const float *x, size_t x_stride, int rows,
                      float *y, int accumulate, ear_nn_activation act, void *scratch,
                      ear_error *err)
{
    ear_nn_matmul *mm = (ear_nn_matmul *)cmm; /* the plan table is a cache behind a lock */
    if (rows < 1 || rows > mm->max_rows || x_stride < 1)
        return ear_error_set(err, "matmul: %d rows (1..%d), row stride %zu", rows, mm->max_rows,
                             x_stride);
    if ((unsigned)act > EAR_NN_ACT_GELU)
        return ear_error_set(err, "matmul: unknown activation %d", (int)act);
    dnnl_stream_t stream = thread_stream(err);
    if (!stream)
        return -1;
    accumulate = accumulate ? 1 : 0;
    char *base = (char *)(((uintptr_t)scratch + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
    void *source = base;
    int32_t *products = NULL;
    float *row_scales = NULL;
    int in = mm->in_features;
    if (mm->weights == EAR_NN_WEIGHTS_INT8) {
        products = (int32_t *)(base + source_bytes(mm));
        row_scales = (float *)((char *)products +
                               align_up((size_t)mm->max_rows * (size_t)mm->out_features *
                                        sizeof(int32_t)));
        for (int r = 0; r < rows; r++)
            quantize_row(x + (size_t)r * x_stride, (uint8_t *)source + (size_t)r * (size_t)in,
                         in, &row_scales[2 * r], &row_scales[2 * r + 1]);
    } else if (mm->weights == EAR_NN_WEIGHTS_BF16) {
        for (int r = 0; r < rows; r++)
            to_bf16(x + (size_t)r * x_stride, (uint16_t *)source + (size_t)r * (size_t)in, in);
    } else if (x_stride == (size_t)in) {
        source = (void *)x;
    } else {
        for (int r = 0; r < rows; r++)
            memcpy((float *)source + (size_t)r * (size_t)in, x + (size_t)r * x_stride,
                   (size_t)in * sizeof(float));
    }
    void *scratchpad = base + source_bytes(mm) + product_bytes(mm);
    /* Rows in runs of kept plans: one run normally, several once the table is full. */
    size_t element = mm->weights == EAR_NN_WEIGHTS_F32 ? 4 : mm->weights == EAR_NN_WEIGHTS_BF16 ? 2 : 1;
    for (int done = 0; done < rows;) {
        int full;
        plan *p = plan_get(mm, rows - done, accumulate, act, &full, err), *own = NULL;
        if (!p && full)
            p = plan_at_most(mm, rows - done, accumulate, act);
        if (!p && full) /* a full table without a smaller plan: one made for this run only */
            p = own = plan_create(mm, rows - done, accumulate, act, err);
        if (!p)
            return -1;
        int rc = plan_run(mm, p, (const char *)source + (size_t)done * (size_t)in * element,
                          y + (size_t)done * (size_t)mm->out_features, products,
                          row_scales ? row_scales + 2 * done : NULL, scratchpad, stream, err);
        done += p->rows;
        plan_free(own);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- 2-D convolution */

/* Activations are NHWC (batch 1): oneDNN 2.6's brgemm convolutions take that layout directly
 * (NCHW goes to im2col + GEMM, 2 to 40 times slower here), so a ResNet runs with no reorder
 * between layers. */
struct ear_nn_conv2d {
    int in_channels, out_channels, kernel, stride, padding, max_height, max_width;
    ear_nn_weights weights; /* int8 runs as bf16: see ear_nn_conv2d_create */
    dnnl_memory_desc_t weight_md;
    void *weight;
    size_t weight_bytes;
    float *bias;
    size_t scratchpad_bytes;
    pthread_mutex_t lock;
    plan *plans[MAX_PLANS];
    int plan_count;
};

static int conv_out(int size, const ear_nn_conv2d *c)
{
    return (size + 2 * c->padding - c->kernel) / c->stride + 1;
}

static dnnl_status_t conv_pd(const ear_nn_conv2d *c, int height, int width, int accumulate,
                             int relu, int any_weights, dnnl_primitive_desc_t *pd)
{
    dnnl_data_type_t type = c->weights == EAR_NN_WEIGHTS_F32 ? dnnl_f32 : dnnl_bf16;
    dnnl_dims_t sdims = {1, c->in_channels, height, width};
    dnnl_dims_t ddims = {1, c->out_channels, conv_out(height, c), conv_out(width, c)};
    dnnl_dims_t wdims = {c->out_channels, c->in_channels, c->kernel, c->kernel};
    dnnl_dims_t bdims = {c->out_channels};
    dnnl_dims_t strides = {c->stride, c->stride}, padding = {c->padding, c->padding};
    dnnl_memory_desc_t src, wei, bias, dst;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&src, 4, sdims, type, dnnl_nhwc);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&dst, 4, ddims, dnnl_f32, dnnl_nhwc);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&bias, 1, bdims, dnnl_f32, dnnl_a);
    if (s == dnnl_success && any_weights)
        s = dnnl_memory_desc_init_by_tag(&wei, 4, wdims, type, dnnl_format_tag_any);
    else
        wei = c->weight_md;
    dnnl_convolution_desc_t desc;
    if (s == dnnl_success)
        s = dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference,
                                               dnnl_convolution_direct, &src, &wei, &bias, &dst,
                                               strides, padding, padding);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_create(&attr);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (s == dnnl_success)
        s = dnnl_post_ops_create(&ops);
    if (s == dnnl_success && accumulate)
        s = dnnl_post_ops_append_sum(ops, 1.0f);
    if (s == dnnl_success && relu)
        s = dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_set_post_ops(attr, ops);
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(pd, &desc, attr, engine, NULL);
    if (ops)
        dnnl_post_ops_destroy(ops);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return s;
}

static plan *conv_plan_create(const ear_nn_conv2d *c, int height, int width, int accumulate,
                              int relu, ear_error *err)
{
    plan *p = calloc(1, sizeof *p);
    dnnl_primitive_desc_t pd = NULL;
    if (!p) {
        ear_error_set(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->busy, NULL);
    p->rows = height;
    p->width = width;
    p->accumulate = accumulate;
    p->act = relu ? EAR_NN_ACT_RELU : EAR_NN_ACT_NONE;
    dnnl_status_t s = conv_pd(c, height, width, accumulate, relu, 0, &pd);
    if (s == dnnl_success)
        s = dnnl_primitive_create(&p->matmul, pd);
    dnnl_query_t queries[5] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_weights_md,
                               dnnl_query_dst_md, dnnl_query_scratchpad_md};
    for (int i = 0; i < 5 && s == dnnl_success; i++)
        s = dnnl_memory_create(&p->mem[i], dnnl_primitive_desc_query_md(pd, queries[i], i == 2),
                               engine, DNNL_MEMORY_NONE);
    if (s != dnnl_success) {
        dnnl_failed(s, "convolution primitive", err);
        goto fail;
    }
    p->scratchpad = pd_scratchpad(pd);
    if (p->scratchpad > c->scratchpad_bytes) {
        ear_error_set(err, "oneDNN: convolution on %dx%d wants %zu bytes of scratchpad, %zu "
                           "planned", height, width, p->scratchpad, c->scratchpad_bytes);
        goto fail;
    }
    dnnl_primitive_desc_destroy(pd);
    return p;
fail:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    plan_free(p);
    return NULL;
}

static void conv_destroy(ear_nn_conv2d *c)
{
    for (int i = 0; i < c->plan_count; i++)
        plan_free(c->plans[i]);
    pthread_mutex_destroy(&c->lock);
    free(c->weight);
    free(c->bias);
    free(c);
}

void ear_nn_conv2d_free(ear_nn_conv2d *c)
{
    if (c)
        conv_destroy(c);
}

ear_nn_conv2d *ear_nn_conv2d_create(const float *weight, const float *bias, int in_channels,
                                    int out_channels, int kernel, int stride, int padding,
                                    int max_height, int max_width, ear_nn_weights weights,
                                    ear_error *err)
{
    if (in_channels < 1 || out_channels < 1 || kernel < 1 || stride < 1 || padding < 0 ||
        max_height + 2 * padding < kernel || max_width + 2 * padding < kernel || !weight ||
        !bias || (unsigned)weights > EAR_NN_WEIGHTS_INT8) {
        ear_error_set(err, "convolution: bad shape %d -> %d, kernel %d, stride %d, padding %d "
                           "on %dx%d", in_channels, out_channels, kernel, stride, padding,
                      max_height, max_width);
        return NULL;
    }
    if (engine_ready(err) < 0)
        return NULL;
    ear_nn_conv2d *c = calloc(1, sizeof *c);
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t from = NULL, to = NULL;
    if (!c) {
        ear_error_set(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->in_channels = in_channels;
    c->out_channels = out_channels;
    c->kernel = kernel;
    c->stride = stride;
    c->padding = padding;
    c->max_height = max_height;
    c->max_width = max_width;
    /* int8 convolutions would need a per-tensor activation scale (oneDNN 2.6 scales no finer
     * in a fast kernel); until then they run in bf16, which keeps the speed of the halved
     * weights. */
    c->weights = weights == EAR_NN_WEIGHTS_F32 ? EAR_NN_WEIGHTS_F32 : EAR_NN_WEIGHTS_BF16;
    dnnl_status_t s = conv_pd(c, max_height, max_width, 0, 0, 1, &pd);
    if (c->weights != EAR_NN_WEIGHTS_F32 && (s == dnnl_unimplemented || (s == dnnl_success &&
                                                                         is_reference(pd)))) {
        /* This CPU has no bf16 kernel (no AVX-512, or valgrind's CPU): float32 instead. */
        if (s == dnnl_success)
            dnnl_primitive_desc_destroy(pd);
        pd = NULL;
        c->weights = EAR_NN_WEIGHTS_F32;
        s = conv_pd(c, max_height, max_width, 0, 0, 1, &pd);
    }
    if (s != dnnl_success) {
        dnnl_failed(s, "convolution", err);
        goto fail;
    }
    c->weight_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_desc_destroy(pd);
    pd = NULL;
    c->weight_bytes = dnnl_memory_desc_get_size(&c->weight_md);
    c->bias = malloc((size_t)out_channels * sizeof *c->bias);
    if (!c->bias || posix_memalign(&c->weight, ALIGN, align_up(c->weight_bytes)) != 0) {
        c->weight = NULL;
        ear_error_set(err, "out of memory");
        goto fail;
    }
    memcpy(c->bias, bias, (size_t)out_channels * sizeof *bias);
    dnnl_memory_desc_t plain;
    dnnl_dims_t wdims = {out_channels, in_channels, kernel, kernel};
    dnnl_stream_t stream = thread_stream(err);
    if (!stream)
        goto fail;
    s = dnnl_memory_desc_init_by_tag(&plain, 4, wdims, dnnl_f32, dnnl_oihw);
    if (s == dnnl_success)
        s = dnnl_reorder_primitive_desc_create(&rpd, &plain, engine, &c->weight_md, engine, NULL);
    if (s == dnnl_success)
        s = dnnl_primitive_create(&reorder, rpd);
    if (s == dnnl_success)
        s = dnnl_memory_create(&from, &plain, engine, (void *)weight);
    if (s == dnnl_success)
        s = dnnl_memory_create(&to, &c->weight_md, engine, c->weight);
    if (s == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
        s = dnnl_primitive_execute(reorder, stream, 2, args);
    }
    if (s == dnnl_success)
        s = dnnl_stream_wait(stream);
    if (s != dnnl_success) {
        dnnl_failed(s, "convolution weight reorder", err);
        goto fail;
    }
    /* Scratchpad: at the largest input, and at a few smaller ones, with room to spare. */
    int heights[3] = {max_height, (max_height + 1) / 2, 1};
    int widths[3] = {max_width, (max_width + 1) / 2, 1};
    for (int i = 0; i < 3; i++)
        for (int relu = 0; relu <= 1; relu++) {
            int h = heights[i] + 2 * padding < kernel ? max_height : heights[i];
            int w = widths[i] + 2 * padding < kernel ? max_width : widths[i];
            s = conv_pd(c, h, w, 1, relu, 0, &pd);
            if (s != dnnl_success) {
                dnnl_failed(s, "convolution", err);
                goto fail;
            }
            size_t bytes = pd_scratchpad(pd);
            dnnl_primitive_desc_destroy(pd);
            pd = NULL;
            if (bytes > c->scratchpad_bytes)
                c->scratchpad_bytes = bytes;
        }
    c->scratchpad_bytes = align_up(c->scratchpad_bytes + c->scratchpad_bytes / 2 + 4096);
    dnnl_memory_destroy(from);
    dnnl_memory_destroy(to);
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd);
    return c;
fail:
    if (from)
        dnnl_memory_destroy(from);
    if (to)
        dnnl_memory_destroy(to);
    if (reorder)
        dnnl_primitive_destroy(reorder);
    if (rpd)
        dnnl_primitive_desc_destroy(rpd);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    conv_destroy(c);
    return NULL;
}

size_t ear_nn_conv2d_scratch_bytes(const ear_nn_conv2d *c)
{
    size_t source = c->weights == EAR_NN_WEIGHTS_F32
                        ? 0
                        : align_up((size_t)c->max_height * (size_t)c->max_width *
                                   (size_t)c->in_channels * sizeof(uint16_t));
    return source + c->scratchpad_bytes + ALIGN;
}

size_t ear_nn_conv2d_weight_bytes(const ear_nn_conv2d *c)
{
    return c->weight_bytes + (size_t)c->out_channels * sizeof(float);
}

int ear_nn_conv2d_run(const ear_nn_conv2d *cc, const float *input, int height, int width,
                      float *output, int accumulate, int relu, void *scratch, ear_error *err)
{
    ear_nn_conv2d *c = (ear_nn_conv2d *)cc; /* the plan table is a cache behind a lock */
    if (height < 1 || width < 1 || height > c->max_height || width > c->max_width ||
        height + 2 * c->padding < c->kernel || width + 2 * c->padding < c->kernel)
        return ear_error_set(err, "convolution: a %dx%d input (at most %dx%d, at least the "
                                  "kernel %d with padding %d)", height, width, c->max_height,
                             c->max_width, c->kernel, c->padding);
    dnnl_stream_t stream = thread_stream(err);
    if (!stream)
        return -1;
    accumulate = accumulate ? 1 : 0;
    relu = relu ? 1 : 0;
    char *base = (char *)(((uintptr_t)scratch + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
    const void *source = input;
    if (c->weights != EAR_NN_WEIGHTS_F32) {
        to_bf16(input, (uint16_t *)base, height * width * c->in_channels);
        source = base;
        base += align_up((size_t)c->max_height * (size_t)c->max_width *
                         (size_t)c->in_channels * sizeof(uint16_t));
    }
    ear_nn_activation act = relu ? EAR_NN_ACT_RELU : EAR_NN_ACT_NONE;
    plan *p = NULL, *own = NULL;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < c->plan_count && !p; i++) {
        plan *q = c->plans[i];
        if (q->rows == height && q->width == width && q->accumulate == accumulate &&
            q->act == act)
            p = q;
    }
    if (!p && c->plan_count < MAX_PLANS) {
        p = conv_plan_create(c, height, width, accumulate, relu, err);
        if (p)
            c->plans[c->plan_count++] = p;
    }
    pthread_mutex_unlock(&c->lock);
    if (!p && c->plan_count == MAX_PLANS) /* a full table: a primitive for this run only */
        p = own = conv_plan_create(c, height, width, accumulate, relu, err);
    if (!p)
        return -1;
    dnnl_memory_t fresh[5] = {0}, *mem = p->mem;
    int locked = pthread_mutex_trylock(&p->busy) == 0;
    dnnl_status_t s = dnnl_success;
    if (!locked) { /* another thread runs this plan now: memory objects of our own */
        for (int i = 0; i < 5 && s == dnnl_success; i++) {
            const dnnl_memory_desc_t *md;
            s = dnnl_memory_get_memory_desc(p->mem[i], &md);
            if (s == dnnl_success)
                s = dnnl_memory_create(&fresh[i], md, engine, DNNL_MEMORY_NONE);
        }
        mem = fresh;
    }
    void *handles[5] = {(void *)source, c->weight, c->bias, output, base};
    for (int i = 0; i < 5 && s == dnnl_success; i++)
        s = dnnl_memory_set_data_handle_v2(mem[i], handles[i], stream);
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, mem[0]}, {DNNL_ARG_WEIGHTS, mem[1]},
                               {DNNL_ARG_BIAS, mem[2]}, {DNNL_ARG_DST, mem[3]},
                               {DNNL_ARG_SCRATCHPAD, mem[4]}};
    if (s == dnnl_success)
        s = dnnl_primitive_execute(p->matmul, stream, 5, args);
    if (s == dnnl_success)
        s = dnnl_stream_wait(stream);
    if (locked)
        pthread_mutex_unlock(&p->busy);
    for (int i = 0; i < 5; i++)
        if (fresh[i])
            dnnl_memory_destroy(fresh[i]);
    plan_free(own);
    return s == dnnl_success ? 0 : dnnl_failed(s, "convolution", err);
}
