/* The restricted pickle machine: runs data.pkl as data. It knows the opcodes that Python's
 * pickler writes for dicts, lists, tuples, strings, numbers and torch's tensors (protocols
 * 2 to 5), and calls nothing but the few globals torch.save puts in a state dict, each of
 * which it implements itself. Everything it builds comes from one arena freed at close. */
#include "pt/pt_internal.h"

#include <stdlib.h>
#include <string.h>

typedef enum global_id {
    G_ORDERED_DICT,
    G_REBUILD_TENSOR_V2,
    G_REBUILD_PARAMETER,
    G_REBUILD_PARAMETER_WITH_STATE,
    G_STORAGE, /* + dtype */
} global_id;

struct ear_pt_storage {
    ear_pt_dtype dtype;
    size_t numel;
    const ear_pt_entry *entry;
    const char *key;
};

typedef enum other_kind { OTHER_GLOBAL, OTHER_STORAGE } other_kind;

struct ear_pt_value {
    ear_pt_kind kind;
    uint8_t other;  /* for EAR_PT_KIND_OTHER: a global or a storage */
    uint8_t color;  /* the cycle check: 0 unseen, 1 on the path, 2 done */
    uint8_t height; /* the longest path down, once done */
    union {
        int64_t i;
        double f;
        struct {
            const char *s;
            size_t length;
        } str;
        struct {
            ear_pt_value **items; /* a dict's are key, value, key, value ... */
            size_t count, capacity;
        } seq;
        const ear_pt_tensor *tensor;
        struct {
            int id;
            ear_pt_dtype dtype;
        } global;
        ear_pt_storage *storage;
    } u;
};

struct ear_pt_arena_chunk {
    ear_pt_arena_chunk *next;
    size_t used, size;
    _Alignas(16) uint8_t data[];
};

static void *arena_alloc(ear_pt_file *f, size_t size, ear_error *err)
{
    size = (size + 15) & ~(size_t)15;
    ear_pt_arena_chunk *c = f->chunks;
    if (!c || c->size - c->used < size) {
        size_t want = size > ((size_t)64 << 10) ? size : (size_t)64 << 10;
        if (f->arena_bytes + want > EAR_PT_MAX_ARENA) {
            ear_error_set(err, "%s: the pickle needs more than %zu bytes of values", f->path,
                          EAR_PT_MAX_ARENA);
            return NULL;
        }
        c = malloc(sizeof *c + want);
        if (!c) {
            ear_error_set(err, "%s: out of memory", f->path);
            return NULL;
        }
        c->next = f->chunks;
        c->used = 0;
        c->size = want;
        f->chunks = c;
        f->arena_bytes += want;
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

void ear_pt_arena_free(ear_pt_file *f)
{
    while (f->chunks) {
        ear_pt_arena_chunk *next = f->chunks->next;
        free(f->chunks);
        f->chunks = next;
    }
}

typedef struct vm {
    ear_pt_file *f;
    ear_error *err;
    const uint8_t *start, *p, *end;
    ear_pt_value **stack;
    size_t sp, stack_capacity;
    size_t *marks;
    size_t mark_count;
    ear_pt_value **memo;
    size_t memo_count, memo_capacity;
    size_t opcode_at; /* offset of the opcode being run, for messages */
} vm;

#define FAIL(...) ear_error_set(m->err, __VA_ARGS__) /* always -1 */

static ear_pt_value *new_value(vm *m, ear_pt_kind kind)
{
    if (m->f->value_count >= EAR_PT_MAX_VALUES) {
        FAIL("%s: the pickle makes more than %d values", m->f->path, EAR_PT_MAX_VALUES);
        return NULL;
    }
    ear_pt_value *v = arena_alloc(m->f, sizeof *v, m->err);
    if (!v)
        return NULL;
    memset(v, 0, sizeof *v);
    v->kind = kind;
    m->f->value_count++;
    return v;
}

static const char *kind_name(const ear_pt_value *v)
{
    static const char *names[] = {"None", "bool", "int", "float", "str", "list",
                                  "tuple", "dict", "tensor"};
    if (v->kind == EAR_PT_KIND_OTHER)
        return v->other == OTHER_STORAGE ? "storage" : "global";
    return names[v->kind];
}

static int push(vm *m, ear_pt_value *v)
{
    if (!v)
        return -1;
    if (m->sp == m->stack_capacity) {
        if (m->sp >= EAR_PT_MAX_STACK)
            return FAIL("%s: the pickle stack grows past %d entries", m->f->path,
                        EAR_PT_MAX_STACK);
        size_t capacity = m->stack_capacity ? m->stack_capacity * 2 : 256;
        ear_pt_value **stack = realloc(m->stack, capacity * sizeof *stack);
        if (!stack)
            return FAIL("%s: out of memory", m->f->path);
        m->stack = stack;
        m->stack_capacity = capacity;
    }
    m->stack[m->sp++] = v;
    return 0;
}

/* The lowest stack slot the current opcode may pop: above the innermost MARK. */
static size_t floor_of(const vm *m)
{
    return m->mark_count ? m->marks[m->mark_count - 1] : 0;
}

static ear_pt_value *pop(vm *m, const char *op)
{
    if (m->sp <= floor_of(m)) {
        FAIL("%s: data.pkl: %s at byte %zu finds the stack empty", m->f->path, op, m->opcode_at);
        return NULL;
    }
    return m->stack[--m->sp];
}

static ear_pt_value *top(vm *m, const char *op)
{
    if (m->sp <= floor_of(m)) {
        FAIL("%s: data.pkl: %s at byte %zu finds the stack empty", m->f->path, op, m->opcode_at);
        return NULL;
    }
    return m->stack[m->sp - 1];
}

/* The container under the items of a MARK that began at first (APPENDS, SETITEMS). */
static ear_pt_value *under_mark(vm *m, size_t first, const char *op)
{
    if (first <= floor_of(m)) {
        FAIL("%s: data.pkl: %s at byte %zu has no container under its MARK", m->f->path, op,
             m->opcode_at);
        return NULL;
    }
    return m->stack[first - 1];
}

/* Ends the innermost MARK: its items are stack[*first .. sp). */
static int pop_mark(vm *m, const char *op, size_t *first)
{
    if (!m->mark_count)
        return FAIL("%s: data.pkl: %s at byte %zu without a MARK", m->f->path, op, m->opcode_at);
    *first = m->marks[--m->mark_count];
    return 0;
}

static int need(vm *m, size_t n, const char *op)
{
    if ((size_t)(m->end - m->p) < n)
        return FAIL("%s: data.pkl: %s at byte %zu runs past the end of the pickle", m->f->path,
                    op, m->opcode_at);
    return 0;
}

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0)
            len = 2, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0)
            len = 3, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0)
            len = 4, cp = c & 0x07;
        else
            return 0;
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        /* Python's pickler writes surrogates as-is ("surrogatepass"); allow them. */
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += len;
    }
    return 1;
}

static int push_string(vm *m, uint64_t length, int check_utf8, const char *op)
{
    if ((uint64_t)(m->end - m->p) < length)
        return FAIL("%s: data.pkl: %s at byte %zu claims %llu bytes, more than the pickle has",
                    m->f->path, op, m->opcode_at, (unsigned long long)length);
    if (check_utf8 && !utf8_valid(m->p, (size_t)length))
        return FAIL("%s: data.pkl: %s at byte %zu is not valid UTF-8", m->f->path, op,
                    m->opcode_at);
    ear_pt_value *v = new_value(m, EAR_PT_KIND_STRING);
    if (!v)
        return -1;
    char *s = arena_alloc(m->f, (size_t)length + 1, m->err);
    if (!s)
        return -1;
    memcpy(s, m->p, (size_t)length);
    s[length] = 0;
    m->p += length;
    v->u.str.s = s;
    v->u.str.length = (size_t)length;
    return push(m, v);
}

static int push_int(vm *m, int64_t i)
{
    ear_pt_value *v = new_value(m, EAR_PT_KIND_INT);
    if (!v)
        return -1;
    v->u.i = i;
    return push(m, v);
}

/* Appends n values to a list, tuple or dict (a dict takes key, value pairs). */
static int seq_append(vm *m, ear_pt_value *c, ear_pt_value **items, size_t n)
{
    if (n == 0) /* an empty MARK: nothing to add (and items may be NULL) */
        return 0;
    if (c->u.seq.capacity - c->u.seq.count < n) {
        size_t capacity = c->u.seq.capacity ? c->u.seq.capacity : 4;
        while (capacity - c->u.seq.count < n)
            capacity *= 2; /* bounded: count + n are values already made */
        ear_pt_value **grown = arena_alloc(m->f, capacity * sizeof *grown, m->err);
        if (!grown)
            return -1;
        if (c->u.seq.count)
            memcpy(grown, c->u.seq.items, c->u.seq.count * sizeof *grown);
        c->u.seq.items = grown;
        c->u.seq.capacity = capacity;
    }
    memcpy(c->u.seq.items + c->u.seq.count, items, n * sizeof *items);
    c->u.seq.count += n;
    return 0;
}

static int make_tuple(vm *m, size_t first)
{
    ear_pt_value *t = new_value(m, EAR_PT_KIND_TUPLE);
    if (!t || seq_append(m, t, m->stack + first, m->sp - first) != 0)
        return -1;
    m->sp = first;
    return push(m, t);
}

/* The globals a state dict uses, and what a STORAGE global's dtype is. */
static const struct {
    const char *module, *name;
    int id;
    ear_pt_dtype dtype;
} allowed_globals[] = {
    {"collections", "OrderedDict", G_ORDERED_DICT, 0},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2, 0},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, 0},
    {"torch._utils", "_rebuild_parameter_with_state", G_REBUILD_PARAMETER_WITH_STATE, 0},
    {"torch", "FloatStorage", G_STORAGE, EAR_PT_F32},
    {"torch", "HalfStorage", G_STORAGE, EAR_PT_F16},
    {"torch", "BFloat16Storage", G_STORAGE, EAR_PT_BF16},
    {"torch", "DoubleStorage", G_STORAGE, EAR_PT_F64},
    {"torch", "LongStorage", G_STORAGE, EAR_PT_I64},
    {"torch", "IntStorage", G_STORAGE, EAR_PT_I32},
    {"torch", "ShortStorage", G_STORAGE, EAR_PT_I16},
    {"torch", "CharStorage", G_STORAGE, EAR_PT_I8},
    {"torch", "ByteStorage", G_STORAGE, EAR_PT_U8},
    {"torch", "BoolStorage", G_STORAGE, EAR_PT_BOOL},
};

/* A printable, bounded copy of a global's module or name for messages. */
static void printable(char *out, size_t size, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < size; i++)
        out[o++] = s[i] >= 0x20 && s[i] < 0x7F ? s[i] : '?';
    out[o] = 0;
}

static int push_global(vm *m, const char *module, size_t module_length, const char *name,
                       size_t name_length)
{
    for (size_t i = 0; i < sizeof allowed_globals / sizeof allowed_globals[0]; i++) {
        if (strlen(allowed_globals[i].module) == module_length &&
            memcmp(allowed_globals[i].module, module, module_length) == 0 &&
            strlen(allowed_globals[i].name) == name_length &&
            memcmp(allowed_globals[i].name, name, name_length) == 0) {
            ear_pt_value *v = new_value(m, EAR_PT_KIND_OTHER);
            if (!v)
                return -1;
            v->other = OTHER_GLOBAL;
            v->u.global.id = allowed_globals[i].id;
            v->u.global.dtype = allowed_globals[i].dtype;
            return push(m, v);
        }
    }
    char a[80], b[80];
    printable(a, sizeof a, module, module_length);
    printable(b, sizeof b, name, name_length);
    return FAIL("%s: data.pkl: refusing the global %s.%s (byte %zu): only a state dict's "
                "globals are allowed; a pickle is data here, never code",
                m->f->path, a, b, m->opcode_at);
}

static int is_int(const ear_pt_value *v)
{
    return v->kind == EAR_PT_KIND_INT;
}

static int is_string(const ear_pt_value *v, const char *s)
{
    return v->kind == EAR_PT_KIND_STRING && v->u.str.length == strlen(s) &&
           memcmp(v->u.str.s, s, v->u.str.length) == 0;
}

/* BINPERSID: ('storage', torch.XStorage, key, location, numel) names a record data/<key>. */
static int persistent_load(vm *m)
{
    ear_pt_value *pid = pop(m, "BINPERSID");
    if (!pid)
        return -1;
    ear_pt_value **it = pid->u.seq.items;
    if (pid->kind != EAR_PT_KIND_TUPLE || pid->u.seq.count != 5 || !is_string(it[0], "storage") ||
        it[1]->kind != EAR_PT_KIND_OTHER || it[1]->other != OTHER_GLOBAL ||
        it[1]->u.global.id != G_STORAGE || it[2]->kind != EAR_PT_KIND_STRING ||
        it[3]->kind != EAR_PT_KIND_STRING || !is_int(it[4]) || it[4]->u.i < 0)
        return FAIL("%s: data.pkl: a persistent id (byte %zu) that is not ('storage', "
                    "torch.<Type>Storage, key, location, numel)", m->f->path, m->opcode_at);
    ear_pt_dtype dtype = it[1]->u.global.dtype;
    const char *key = it[2]->u.str.s;
    char name[EAR_PT_MAX_NAME + 300], shown[80];
    printable(shown, sizeof shown, key, it[2]->u.str.length);
    if (it[2]->u.str.length > 256 || memchr(key, 0, it[2]->u.str.length))
        return FAIL("%s: data.pkl: storage key '%s' is malformed", m->f->path, shown);
    int length = snprintf(name, sizeof name, "%s/data/%s", m->f->folder, key);
    ear_pt_entry *entry = ear_pt_zip_find(m->f, name, (size_t)length);
    if (!entry)
        return FAIL("%s: storage 'data/%s' is missing from the zip", m->f->path, shown);
    uint64_t numel = (uint64_t)it[4]->u.i;
    size_t element = ear_pt_dtype_size(dtype);
    if (!entry->storage) {
        if (entry->method != 0)
            return FAIL("%s: storage 'data/%s' is compressed (zip method %u); torch.save "
                        "stores storages uncompressed, and compressed ones are refused",
                        m->f->path, shown, entry->method);
        if (numel > entry->size / element || numel * element != entry->size)
            return FAIL("%s: storage 'data/%s' holds %zu bytes, but the pickle says %llu "
                        "elements of %zu bytes", m->f->path, shown, entry->size,
                        (unsigned long long)numel, element);
        ear_pt_storage *s = arena_alloc(m->f, sizeof *s, m->err);
        if (!s)
            return -1;
        s->dtype = dtype;
        s->numel = (size_t)numel;
        s->entry = entry;
        s->key = key;
        entry->storage = s;
    } else if (entry->storage->dtype != dtype || entry->storage->numel != numel) {
        return FAIL("%s: storage 'data/%s' is named twice with different types or sizes",
                    m->f->path, shown);
    }
    ear_pt_value *v = new_value(m, EAR_PT_KIND_OTHER);
    if (!v)
        return -1;
    v->other = OTHER_STORAGE;
    v->u.storage = entry->storage;
    return push(m, v);
}

/* torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, meta]) */
static ear_pt_value *rebuild_tensor(vm *m, ear_pt_value *args)
{
    ear_pt_value **a = args->u.seq.items;
    size_t n = args->u.seq.count;
    if (n < 6 || n > 7 || a[0]->kind != EAR_PT_KIND_OTHER || a[0]->other != OTHER_STORAGE ||
        !is_int(a[1]) || a[1]->u.i < 0 ||
        (a[2]->kind != EAR_PT_KIND_TUPLE && a[2]->kind != EAR_PT_KIND_LIST) ||
        (a[3]->kind != EAR_PT_KIND_TUPLE && a[3]->kind != EAR_PT_KIND_LIST) ||
        a[2]->u.seq.count != a[3]->u.seq.count || a[4]->kind != EAR_PT_KIND_BOOL ||
        a[5]->kind != EAR_PT_KIND_DICT) {
        FAIL("%s: data.pkl: _rebuild_tensor_v2 (byte %zu) called with arguments that are not "
             "(storage, offset, shape, stride, requires_grad, hooks)", m->f->path,
             m->opcode_at);
        return NULL;
    }
    const ear_pt_storage *s = a[0]->u.storage;
    size_t ndim = a[2]->u.seq.count;
    if (ndim > EAR_PT_MAX_DIMS) {
        FAIL("%s: data.pkl: a tensor of %zu dimensions (at most %d are read)", m->f->path, ndim,
             EAR_PT_MAX_DIMS);
        return NULL;
    }
    ear_pt_tensor *t = arena_alloc(m->f, sizeof *t, m->err);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    t->dtype = s->dtype;
    t->ndim = (int)ndim;
    t->storage_key = s->key;
    t->storage = s->entry->data;
    t->storage_bytes = s->entry->size;
    size_t element = ear_pt_dtype_size(s->dtype);
    size_t numel = 1, last = (size_t)a[1]->u.i; /* offset of the last element reached */
    int overflow = (uint64_t)a[1]->u.i > SIZE_MAX / 2;
    for (size_t d = 0; d < ndim; d++) {
        const ear_pt_value *size = a[2]->u.seq.items[d], *stride = a[3]->u.seq.items[d];
        if (!is_int(size) || !is_int(stride) || size->u.i < 0 || stride->u.i < 0) {
            FAIL("%s: data.pkl: a tensor's shape or stride holds something other than "
                 "non-negative ints", m->f->path);
            return NULL;
        }
        t->shape[d] = (size_t)size->u.i;
        t->stride[d] = (size_t)stride->u.i;
        if (t->shape[d] && numel > SIZE_MAX / 2 / t->shape[d])
            overflow = 1;
        else
            numel *= t->shape[d];
        if (t->shape[d] && t->stride[d] && t->shape[d] - 1 > (SIZE_MAX / 2 - last) / t->stride[d])
            overflow = 1;
        else if (t->shape[d])
            last += (t->shape[d] - 1) * t->stride[d];
    }
    t->storage_offset = (size_t)a[1]->u.i;
    char shown[80];
    printable(shown, sizeof shown, s->key, strlen(s->key));
    if (overflow || (numel && last >= s->numel)) {
        FAIL("%s: storage shorter than tensor: a tensor (offset %zu, %zu dims) reaches "
             "element %s%zu of storage 'data/%s', which holds %zu", m->f->path,
             t->storage_offset, ndim, overflow ? "beyond " : "", last, shown, s->numel);
        return NULL;
    }
    t->numel = numel;
    if (numel) {
        t->data = s->entry->data + t->storage_offset * element;
        t->aligned = ((uintptr_t)t->data % element) == 0;
    }
    /* C order, densely: each stride the product of the sizes after it (size-1 dims free). */
    size_t expect = 1;
    t->contiguous = 1;
    for (size_t d = ndim; d-- > 0;) {
        if (t->shape[d] != 1 && t->stride[d] != expect)
            t->contiguous = 0;
        expect *= t->shape[d];
    }
    if (numel == 0)
        t->contiguous = 1;
    ear_pt_value *v = new_value(m, EAR_PT_KIND_TENSOR);
    if (v)
        v->u.tensor = t;
    return v;
}

static int reduce(vm *m)
{
    ear_pt_value *args = pop(m, "REDUCE");
    ear_pt_value *callable = args ? pop(m, "REDUCE") : NULL;
    if (!callable)
        return -1;
    if (callable->kind != EAR_PT_KIND_OTHER || callable->other != OTHER_GLOBAL)
        return FAIL("%s: data.pkl: REDUCE (byte %zu) calls a %s", m->f->path, m->opcode_at,
                    kind_name(callable));
    if (args->kind != EAR_PT_KIND_TUPLE)
        return FAIL("%s: data.pkl: REDUCE (byte %zu) with arguments that are not a tuple",
                    m->f->path, m->opcode_at);
    size_t n = args->u.seq.count;
    ear_pt_value **a = args->u.seq.items;
    switch (callable->u.global.id) {
    case G_ORDERED_DICT:
        if (n != 0)
            return FAIL("%s: data.pkl: OrderedDict called with arguments (byte %zu)",
                        m->f->path, m->opcode_at);
        return push(m, new_value(m, EAR_PT_KIND_DICT));
    case G_REBUILD_TENSOR_V2:
        return push(m, rebuild_tensor(m, args));
    case G_REBUILD_PARAMETER:
    case G_REBUILD_PARAMETER_WITH_STATE:
        /* (data, requires_grad, hooks[, state]): the parameter is its data for a reader. */
        if (n != (callable->u.global.id == G_REBUILD_PARAMETER ? 3u : 4u) ||
            a[0]->kind != EAR_PT_KIND_TENSOR || a[1]->kind != EAR_PT_KIND_BOOL)
            return FAIL("%s: data.pkl: _rebuild_parameter (byte %zu) with arguments that are "
                        "not (tensor, requires_grad, hooks)", m->f->path, m->opcode_at);
        return push(m, a[0]);
    default:
        return FAIL("%s: data.pkl: REDUCE (byte %zu) calls a storage type", m->f->path,
                    m->opcode_at);
    }
}

/* BUILD sets an object's state: torch's OrderedDicts carry `_metadata` (module versions) as
 * an attribute. A dict's attributes are not data a reader needs: accepted and dropped. */
static int build(vm *m)
{
    ear_pt_value *state = pop(m, "BUILD");
    ear_pt_value *obj = state ? top(m, "BUILD") : NULL;
    if (!obj)
        return -1;
    int state_ok = state->kind == EAR_PT_KIND_DICT || state->kind == EAR_PT_KIND_NONE ||
                   (state->kind == EAR_PT_KIND_TUPLE && state->u.seq.count == 2);
    if (obj->kind != EAR_PT_KIND_DICT || !state_ok)
        return FAIL("%s: data.pkl: BUILD (byte %zu) sets the state of a %s from a %s; only a "
                    "dict's attributes are accepted", m->f->path, m->opcode_at, kind_name(obj),
                    kind_name(state));
    return 0;
}

static int run(vm *m)
{
    for (;;) {
        if (m->p >= m->end)
            return FAIL("%s: data.pkl ends without STOP: truncated", m->f->path);
        m->opcode_at = (size_t)(m->p - m->start);
        uint8_t op = *m->p++;
        size_t first = 0;
        ear_pt_value *v, *c;
        switch (op) {
        case 0x80: /* PROTO */
            if (need(m, 1, "PROTO"))
                return -1;
            if (*m->p < 2 || *m->p > 5)
                return FAIL("%s: data.pkl: pickle protocol %u (2 to 5 are read)", m->f->path,
                            *m->p);
            m->p++;
            break;
        case 0x95: /* FRAME: a length hint for buffered readers */
            if (need(m, 8, "FRAME"))
                return -1;
            if (le(m->p, 8) > (uint64_t)(m->end - m->p - 8))
                return FAIL("%s: data.pkl: FRAME at byte %zu runs past the end", m->f->path,
                            m->opcode_at);
            m->p += 8;
            break;
        case '}': /* EMPTY_DICT */
            if (push(m, new_value(m, EAR_PT_KIND_DICT)))
                return -1;
            break;
        case ']': /* EMPTY_LIST */
            if (push(m, new_value(m, EAR_PT_KIND_LIST)))
                return -1;
            break;
        case ')': /* EMPTY_TUPLE */
            if (push(m, new_value(m, EAR_PT_KIND_TUPLE)))
                return -1;
            break;
        case '(': /* MARK */
            if (m->mark_count == EAR_PT_MAX_MARKS)
                return FAIL("%s: data.pkl: more than %d nested MARKs", m->f->path,
                            EAR_PT_MAX_MARKS);
            m->marks[m->mark_count++] = m->sp;
            break;
        case 'X': /* BINUNICODE */
            if (need(m, 4, "BINUNICODE"))
                return -1;
            m->p += 4;
            if (push_string(m, le(m->p - 4, 4), 1, "BINUNICODE"))
                return -1;
            break;
        case 0x8c: /* SHORT_BINUNICODE */
            if (need(m, 1, "SHORT_BINUNICODE"))
                return -1;
            m->p += 1;
            if (push_string(m, m->p[-1], 1, "SHORT_BINUNICODE"))
                return -1;
            break;
        case 0x8d: /* BINUNICODE8 */
            if (need(m, 8, "BINUNICODE8"))
                return -1;
            m->p += 8;
            if (push_string(m, le(m->p - 8, 8), 1, "BINUNICODE8"))
                return -1;
            break;
        case 'U': /* SHORT_BINSTRING */
            if (need(m, 1, "SHORT_BINSTRING"))
                return -1;
            m->p += 1;
            if (push_string(m, m->p[-1], 0, "SHORT_BINSTRING"))
                return -1;
            break;
        case 'T': /* BINSTRING: a signed length */
            if (need(m, 4, "BINSTRING"))
                return -1;
            m->p += 4;
            if (le(m->p - 4, 4) > 0x7FFFFFFFu)
                return FAIL("%s: data.pkl: BINSTRING at byte %zu has a negative length",
                            m->f->path, m->opcode_at);
            if (push_string(m, le(m->p - 4, 4), 0, "BINSTRING"))
                return -1;
            break;
        case 'q':    /* BINPUT */
        case 'r':    /* LONG_BINPUT */
        case 0x94: { /* MEMOIZE */
            uint64_t index = m->memo_count;
            if (op != 0x94) {
                int n = op == 'q' ? 1 : 4;
                if (need(m, (size_t)n, "BINPUT"))
                    return -1;
                index = le(m->p, n);
                m->p += n;
            }
            if (!(v = top(m, "BINPUT")))
                return -1;
            /* Python's pickler numbers its memo 0, 1, 2 ...: a later index is refused so that
             * no claimed index can make the memo large. */
            if (index > m->memo_count)
                return FAIL("%s: data.pkl: memo index %llu at byte %zu skips ahead of the %zu "
                            "entries so far", m->f->path, (unsigned long long)index,
                            m->opcode_at, m->memo_count);
            if (index == m->memo_count) {
                if (m->memo_count == m->memo_capacity) {
                    if (m->memo_count >= EAR_PT_MAX_MEMO)
                        return FAIL("%s: data.pkl: more than %d memo entries", m->f->path,
                                    EAR_PT_MAX_MEMO);
                    size_t capacity = m->memo_capacity ? m->memo_capacity * 2 : 256;
                    ear_pt_value **memo = realloc(m->memo, capacity * sizeof *memo);
                    if (!memo)
                        return FAIL("%s: out of memory", m->f->path);
                    m->memo = memo;
                    m->memo_capacity = capacity;
                }
                m->memo_count++;
            }
            m->memo[index] = v;
            break;
        }
        case 'h':   /* BINGET */
        case 'j': { /* LONG_BINGET */
            int n = op == 'h' ? 1 : 4;
            if (need(m, (size_t)n, "BINGET"))
                return -1;
            uint64_t index = le(m->p, n);
            m->p += n;
            if (index >= m->memo_count)
                return FAIL("%s: data.pkl: BINGET of memo entry %llu at byte %zu, which is not "
                            "there", m->f->path, (unsigned long long)index, m->opcode_at);
            if (push(m, m->memo[index]))
                return -1;
            break;
        }
        case 'c': { /* GLOBAL "module\nname\n" */
            const uint8_t *module = m->p;
            const uint8_t *nl1 = memchr(module, '\n', (size_t)(m->end - module));
            const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(m->end - nl1 - 1)) : NULL;
            if (!nl2)
                return FAIL("%s: data.pkl: GLOBAL at byte %zu is not two lines", m->f->path,
                            m->opcode_at);
            m->p = nl2 + 1;
            if (push_global(m, (const char *)module, (size_t)(nl1 - module),
                            (const char *)nl1 + 1, (size_t)(nl2 - nl1 - 1)))
                return -1;
            break;
        }
        case 0x93: { /* STACK_GLOBAL */
            ear_pt_value *name = pop(m, "STACK_GLOBAL");
            ear_pt_value *module = name ? pop(m, "STACK_GLOBAL") : NULL;
            if (!module)
                return -1;
            if (name->kind != EAR_PT_KIND_STRING || module->kind != EAR_PT_KIND_STRING)
                return FAIL("%s: data.pkl: STACK_GLOBAL at byte %zu without two strings",
                            m->f->path, m->opcode_at);
            if (push_global(m, module->u.str.s, module->u.str.length, name->u.str.s,
                            name->u.str.length))
                return -1;
            break;
        }
        case 't': /* TUPLE */
            if (pop_mark(m, "TUPLE", &first) || make_tuple(m, first))
                return -1;
            break;
        case 0x85: /* TUPLE1 */
        case 0x86: /* TUPLE2 */
        case 0x87: /* TUPLE3 */
            if (m->sp - floor_of(m) < (size_t)(op - 0x84))
                return FAIL("%s: data.pkl: TUPLE%d at byte %zu finds too few items", m->f->path,
                            op - 0x84, m->opcode_at);
            if (make_tuple(m, m->sp - (size_t)(op - 0x84)))
                return -1;
            break;
        case 'J': /* BININT */
            if (need(m, 4, "BININT"))
                return -1;
            m->p += 4;
            if (push_int(m, (int32_t)(uint32_t)le(m->p - 4, 4)))
                return -1;
            break;
        case 'K': /* BININT1 */
            if (need(m, 1, "BININT1"))
                return -1;
            m->p += 1;
            if (push_int(m, m->p[-1]))
                return -1;
            break;
        case 'M': /* BININT2 */
            if (need(m, 2, "BININT2"))
                return -1;
            m->p += 2;
            if (push_int(m, (int64_t)le(m->p - 2, 2)))
                return -1;
            break;
        case 0x8a: { /* LONG1: little-endian two's complement of n bytes */
            if (need(m, 1, "LONG1"))
                return -1;
            size_t n = *m->p++;
            if (need(m, n, "LONG1"))
                return -1;
            if (n > 8)
                return FAIL("%s: data.pkl: an integer of %zu bytes at byte %zu (8 at most)",
                            m->f->path, n, m->opcode_at);
            uint64_t u = n ? le(m->p, (int)n) : 0;
            if (n && n < 8 && (m->p[n - 1] & 0x80))
                u |= ~(uint64_t)0 << (8 * n); /* sign-extend */
            m->p += n;
            if (push_int(m, (int64_t)u))
                return -1;
            break;
        }
        case 'G': { /* BINFLOAT: big-endian double */
            if (need(m, 8, "BINFLOAT"))
                return -1;
            uint64_t bits = 0;
            for (int i = 0; i < 8; i++)
                bits = bits << 8 | m->p[i];
            m->p += 8;
            double d;
            memcpy(&d, &bits, sizeof d);
            if (!(v = new_value(m, EAR_PT_KIND_FLOAT)))
                return -1;
            v->u.f = d;
            if (push(m, v))
                return -1;
            break;
        }
        case 0x88: /* NEWTRUE */
        case 0x89: /* NEWFALSE */
            if (!(v = new_value(m, EAR_PT_KIND_BOOL)))
                return -1;
            v->u.i = op == 0x88;
            if (push(m, v))
                return -1;
            break;
        case 'N': /* NONE */
            if (push(m, new_value(m, EAR_PT_KIND_NONE)))
                return -1;
            break;
        case 'a': /* APPEND */
            if (!(v = pop(m, "APPEND")) || !(c = top(m, "APPEND")))
                return -1;
            if (c->kind != EAR_PT_KIND_LIST)
                return FAIL("%s: data.pkl: APPEND at byte %zu to a %s", m->f->path,
                            m->opcode_at, kind_name(c));
            if (seq_append(m, c, &v, 1))
                return -1;
            break;
        case 'e': /* APPENDS */
            if (pop_mark(m, "APPENDS", &first) || !(c = under_mark(m, first, "APPENDS")))
                return -1;
            if (c->kind != EAR_PT_KIND_LIST)
                return FAIL("%s: data.pkl: APPENDS at byte %zu to a %s", m->f->path,
                            m->opcode_at, kind_name(c));
            if (seq_append(m, c, m->stack + first, m->sp - first))
                return -1;
            m->sp = first;
            break;
        case 's': { /* SETITEM */
            ear_pt_value *pair[2];
            if (!(pair[1] = pop(m, "SETITEM")) || !(pair[0] = pop(m, "SETITEM")) ||
                !(c = top(m, "SETITEM")))
                return -1;
            if (c->kind != EAR_PT_KIND_DICT)
                return FAIL("%s: data.pkl: SETITEM at byte %zu on a %s", m->f->path,
                            m->opcode_at, kind_name(c));
            if (seq_append(m, c, pair, 2))
                return -1;
            break;
        }
        case 'u': /* SETITEMS */
            if (pop_mark(m, "SETITEMS", &first) || !(c = under_mark(m, first, "SETITEMS")))
                return -1;
            if (c->kind != EAR_PT_KIND_DICT || (m->sp - first) % 2)
                return FAIL("%s: data.pkl: SETITEMS at byte %zu on a %s with %zu items",
                            m->f->path, m->opcode_at, kind_name(c), m->sp - first);
            if (seq_append(m, c, m->stack + first, m->sp - first))
                return -1;
            m->sp = first;
            break;
        case 'Q': /* BINPERSID */
            if (persistent_load(m))
                return -1;
            break;
        case 'R': /* REDUCE */
            if (reduce(m))
                return -1;
            break;
        case 'b': /* BUILD */
            if (build(m))
                return -1;
            break;
        case '.': /* STOP */
            if (m->mark_count || m->sp != 1)
                return FAIL("%s: data.pkl: STOP with %zu values and %zu MARKs left (one value "
                            "expected)", m->f->path, m->sp, m->mark_count);
            m->f->root = m->stack[0];
            return 0;
        default:
            if (op >= 0x20 && op < 0x7F)
                return FAIL("%s: data.pkl: refusing pickle opcode '%c' (0x%02x) at byte %zu: "
                            "not one a state dict uses", m->f->path, op, op, m->opcode_at);
            return FAIL("%s: data.pkl: refusing pickle opcode 0x%02x at byte %zu: not one a "
                        "state dict uses", m->f->path, op, m->opcode_at);
        }
    }
}

static int compare_strings(const void *a, const void *b)
{
    const ear_pt_value *x = *(ear_pt_value *const *)a, *y = *(ear_pt_value *const *)b;
    size_t n = x->u.str.length < y->u.str.length ? x->u.str.length : y->u.str.length;
    int c = memcmp(x->u.str.s, y->u.str.s, n);
    if (c)
        return c;
    return x->u.str.length < y->u.str.length ? -1 : x->u.str.length > y->u.str.length;
}

/* A dict with one string key twice (Python keeps the last; the pickler never writes it). */
static int duplicate_keys(ear_pt_file *f, const ear_pt_value *d, ear_pt_value **scratch,
                          ear_error *err)
{
    size_t n = 0;
    for (size_t i = 0; i < d->u.seq.count; i += 2)
        if (d->u.seq.items[i]->kind == EAR_PT_KIND_STRING)
            scratch[n++] = d->u.seq.items[i];
    qsort(scratch, n, sizeof *scratch, compare_strings);
    for (size_t i = 1; i < n; i++) {
        if (compare_strings(&scratch[i - 1], &scratch[i]) == 0) {
            char shown[80];
            printable(shown, sizeof shown, scratch[i]->u.str.s, scratch[i]->u.str.length);
            return ear_error_set(err, "%s: data.pkl: a dict has the key '%s' twice", f->path,
                                 shown);
        }
    }
    return 0;
}

/* The graph the pickle built, checked once: no cycle (APPEND/SETITEM through the memo can make
 * one), nesting no deeper than EAR_PT_MAX_DEPTH, no dict with a duplicate string key.
 * Iterative, and each value is visited once however often it is shared. */
static int check_graph(ear_pt_file *f, ear_error *err)
{
    struct frame {
        ear_pt_value *v;
        size_t next;
    } path[EAR_PT_MAX_DEPTH + 1];
    ear_pt_value **scratch = NULL;
    size_t scratch_size = 0;
    int depth = 0;
    path[0].v = f->root;
    path[0].next = 0;
    f->root->color = 1;
    while (depth >= 0) {
        struct frame *fr = &path[depth];
        ear_pt_value *v = fr->v;
        int container = v->kind == EAR_PT_KIND_LIST || v->kind == EAR_PT_KIND_TUPLE ||
                        v->kind == EAR_PT_KIND_DICT;
        if (container && fr->next < v->u.seq.count) {
            ear_pt_value *child = v->u.seq.items[fr->next++];
            if (child->color == 1) {
                free(scratch);
                return ear_error_set(err, "%s: data.pkl: a value contains itself", f->path);
            }
            if (child->color == 2) {
                if (child->height + 1 > v->height)
                    v->height = (uint8_t)(child->height + 1);
                continue;
            }
            if (depth == EAR_PT_MAX_DEPTH) {
                free(scratch);
                return ear_error_set(err, "%s: data.pkl: values nested more than %d deep",
                                     f->path, EAR_PT_MAX_DEPTH);
            }
            child->color = 1;
            path[++depth] = (struct frame){child, 0};
            continue;
        }
        if (v->kind == EAR_PT_KIND_DICT && v->u.seq.count > 2) {
            if (scratch_size < v->u.seq.count / 2) {
                free(scratch);
                scratch_size = v->u.seq.count / 2;
                scratch = malloc(scratch_size * sizeof *scratch);
                if (!scratch)
                    return ear_error_set(err, "%s: out of memory", f->path);
            }
            if (duplicate_keys(f, v, scratch, err)) {
                free(scratch);
                return -1;
            }
        }
        v->color = 2;
        if (--depth >= 0 && v->height + 1 > path[depth].v->height)
            path[depth].v->height = (uint8_t)(v->height + 1);
    }
    free(scratch);
    return 0;
}

int ear_pt_unpickle(ear_pt_file *f, ear_error *err)
{
    vm m = {.f = f, .err = err};
    m.start = m.p = f->pickle->data;
    m.end = m.p + f->pickle->size;
    m.marks = malloc(EAR_PT_MAX_MARKS * sizeof *m.marks);
    m.stack_capacity = 256; /* never NULL: `stack + first` is then always defined */
    m.stack = malloc(m.stack_capacity * sizeof *m.stack);
    int status = -1;
    if (!m.marks || !m.stack) {
        ear_error_set(err, "%s: out of memory", f->path);
        goto done;
    }
    if (run(&m) == 0 && check_graph(f, err) == 0)
        status = 0;
done:
    free(m.marks);
    free(m.stack);
    free(m.memo);
    return status;
}

/* The value accessors. */

ear_pt_kind ear_pt_value_kind(const ear_pt_value *v)
{
    return v ? v->kind : EAR_PT_KIND_NONE;
}

int64_t ear_pt_value_int(const ear_pt_value *v)
{
    return v && (v->kind == EAR_PT_KIND_INT || v->kind == EAR_PT_KIND_BOOL) ? v->u.i : 0;
}

double ear_pt_value_float(const ear_pt_value *v)
{
    if (v && v->kind == EAR_PT_KIND_FLOAT)
        return v->u.f;
    return (double)ear_pt_value_int(v);
}

const char *ear_pt_value_string(const ear_pt_value *v, size_t *length)
{
    if (!v || v->kind != EAR_PT_KIND_STRING)
        return NULL;
    if (length)
        *length = v->u.str.length;
    return v->u.str.s;
}

size_t ear_pt_value_count(const ear_pt_value *v)
{
    if (!v)
        return 0;
    if (v->kind == EAR_PT_KIND_LIST || v->kind == EAR_PT_KIND_TUPLE)
        return v->u.seq.count;
    if (v->kind == EAR_PT_KIND_DICT)
        return v->u.seq.count / 2;
    return 0;
}

const ear_pt_value *ear_pt_value_item(const ear_pt_value *v, size_t i)
{
    if (!v || (v->kind != EAR_PT_KIND_LIST && v->kind != EAR_PT_KIND_TUPLE) ||
        i >= v->u.seq.count)
        return NULL;
    return v->u.seq.items[i];
}

const ear_pt_value *ear_pt_dict_key(const ear_pt_value *dict, size_t i)
{
    if (!dict || dict->kind != EAR_PT_KIND_DICT || i >= dict->u.seq.count / 2)
        return NULL;
    return dict->u.seq.items[2 * i];
}

const ear_pt_value *ear_pt_dict_value(const ear_pt_value *dict, size_t i)
{
    if (!dict || dict->kind != EAR_PT_KIND_DICT || i >= dict->u.seq.count / 2)
        return NULL;
    return dict->u.seq.items[2 * i + 1];
}

const ear_pt_value *ear_pt_dict_get(const ear_pt_value *dict, const char *key)
{
    if (!dict || dict->kind != EAR_PT_KIND_DICT)
        return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < dict->u.seq.count; i += 2) {
        const ear_pt_value *k = dict->u.seq.items[i];
        if (k->kind == EAR_PT_KIND_STRING && k->u.str.length == n &&
            memcmp(k->u.str.s, key, n) == 0)
            return dict->u.seq.items[i + 1];
    }
    return NULL;
}

const ear_pt_tensor *ear_pt_value_tensor(const ear_pt_value *v)
{
    return v && v->kind == EAR_PT_KIND_TENSOR ? v->u.tensor : NULL;
}
