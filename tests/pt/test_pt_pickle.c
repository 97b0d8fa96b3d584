/* The restricted pickle machine of src/pt, one opcode sequence at a time: pickles written
 * here byte by byte, wrapped in a torch zip (pt_zip.h), each either read to the values it
 * must give or refused with the reason it must name. This is where each bound is tried:
 * claimed lengths, memo indices, nesting, stack, marks, tensor extents and overflows. */
#include <stdint.h>

#include "pt/pt.h"
#include "pt_zip.h"
#include "test.h"

/* A pickle under construction. */
typedef struct pk {
    uint8_t b[1 << 18];
    size_t n;
} pk;

static void op(pk *p, int c)
{
    if (p->n < sizeof p->b)
        p->b[p->n++] = (uint8_t)c;
}

static void raw(pk *p, const void *data, size_t n)
{
    for (size_t i = 0; i < n; i++)
        op(p, ((const uint8_t *)data)[i]);
}

static void str(pk *p, const char *s) /* SHORT_BINUNICODE */
{
    op(p, 0x8c);
    op(p, (int)strlen(s));
    raw(p, s, strlen(s));
}

static void glob(pk *p, const char *module, const char *name) /* GLOBAL */
{
    op(p, 'c');
    raw(p, module, strlen(module));
    op(p, '\n');
    raw(p, name, strlen(name));
    op(p, '\n');
}

static void int1(pk *p, int k) /* BININT1 */
{
    op(p, 'K');
    op(p, k);
}

static void long8(pk *p, int64_t v) /* LONG1 of 8 bytes */
{
    op(p, 0x8a);
    op(p, 8);
    for (int i = 0; i < 8; i++)
        op(p, (int)(((uint64_t)v >> (8 * i)) & 0xFF));
}

static void pid(pk *p, const char *type, const char *key, int numel) /* BINPERSID */
{
    op(p, '(');
    str(p, "storage");
    glob(p, "torch", type);
    str(p, key);
    str(p, "cpu");
    int1(p, numel);
    op(p, 't');
    op(p, 'Q');
}

/* _rebuild_tensor_v2(pid(type, key, numel), offset, shape, stride, False, {}) */
static void tensor(pk *p, const char *type, const char *key, int numel, int64_t offset, int ndim,
                   const int64_t *shape, const int64_t *stride)
{
    glob(p, "torch._utils", "_rebuild_tensor_v2");
    op(p, '(');
    pid(p, type, key, numel);
    long8(p, offset);
    op(p, '(');
    for (int d = 0; d < ndim; d++)
        long8(p, shape[d]);
    op(p, 't');
    op(p, '(');
    for (int d = 0; d < ndim; d++)
        long8(p, stride[d]);
    op(p, 't');
    op(p, 0x89);
    op(p, '}');
    op(p, 't');
    op(p, 'R');
}

static void start(pk *p)
{
    p->n = 0;
    op(p, 0x80);
    op(p, 2);
}

/* Opens p wrapped in a zip: NULL and the message in err when refused. The caller closes. */
static ear_pt_file *open_pickle(const pk *p, ear_error *err, uint8_t **zip)
{
    size_t size = 0;
    *zip = ear_test_pt_zip(p->b, p->n, &size);
    memset(err, 0, sizeof *err);
    return ear_pt_open_memory(*zip, size, err);
}

/* The pickle must be refused with a message holding reason. */
static void refused(const char *what, const pk *p, const char *reason)
{
    ear_error err;
    uint8_t *zip;
    ear_pt_file *f = open_pickle(p, &err, &zip);
    EAR_CHECK_MSG(!f, "%s: read, but should be refused (\"%s\")", what, reason);
    EAR_CHECK_MSG(f || (strncmp(err.message, "<memory>: ", 10) == 0 && strstr(err.message, reason)),
                  "%s: message \"%s\" lacks \"%s\"", what, err.message, reason);
    ear_pt_close(f);
    free(zip);
}

/* The pickle must be read; returns the file (and its zip, to free after closing). */
static ear_pt_file *accepted(const char *what, const pk *p, uint8_t **zip)
{
    ear_error err;
    ear_pt_file *f = open_pickle(p, &err, zip);
    EAR_CHECK_MSG(f, "%s: refused: %s", what, err.message);
    return f;
}

static void test_tensors(void)
{
    pk *p = malloc(sizeof *p);
    uint8_t *zip;
    const int64_t s22[] = {2, 2}, c22[] = {2, 1}, t22[] = {1, 2};

    /* A 2x2 view of data/0 (1, 2, 3, 4), then its transpose. */
    start(p);
    tensor(p, "FloatStorage", "0", 4, 0, 2, s22, c22);
    op(p, '.');
    ear_pt_file *f = accepted("2x2 tensor", p, &zip);
    const ear_pt_tensor *t = f ? ear_pt_value_tensor(ear_pt_root(f)) : NULL;
    EAR_CHECK(t && t->dtype == EAR_PT_F32 && t->ndim == 2 && t->numel == 4 && t->contiguous);
    float v[4] = {0};
    if (t)
        ear_pt_tensor_to_f32(t, v);
    EAR_CHECK(v[0] == 1 && v[1] == 2 && v[2] == 3 && v[3] == 4);
    EAR_CHECK(f && ear_pt_tensor_count(f) == 0); /* the root is no dict */
    ear_pt_close(f);
    free(zip);

    start(p);
    tensor(p, "FloatStorage", "0", 4, 0, 2, s22, t22);
    op(p, '.');
    f = accepted("transposed", p, &zip);
    t = f ? ear_pt_value_tensor(ear_pt_root(f)) : NULL;
    EAR_CHECK(t && !t->contiguous);
    if (t)
        ear_pt_tensor_to_f32(t, v);
    EAR_CHECK(v[0] == 1 && v[1] == 3 && v[2] == 2 && v[3] == 4);
    ear_pt_close(f);
    free(zip);

    /* An empty tensor may sit anywhere; an empty storage holds an empty tensor. */
    const int64_t s0[] = {0}, c1[] = {1};
    start(p);
    op(p, ']');
    op(p, '(');
    tensor(p, "FloatStorage", "0", 4, 1000, 1, s0, c1);
    tensor(p, "ByteStorage", "3", 0, 0, 1, s0, c1);
    op(p, 'e');
    op(p, '.');
    f = accepted("empty tensors", p, &zip);
    if (f) {
        const ear_pt_tensor *a = ear_pt_value_tensor(ear_pt_value_item(ear_pt_root(f), 0));
        const ear_pt_tensor *b = ear_pt_value_tensor(ear_pt_value_item(ear_pt_root(f), 1));
        EAR_CHECK(a && a->numel == 0 && a->data == NULL && b && b->numel == 0 &&
                  b->dtype == EAR_PT_U8);
    }
    ear_pt_close(f);
    free(zip);

    /* _rebuild_parameter(tensor, requires_grad, hooks) is the tensor. */
    start(p);
    glob(p, "torch._utils", "_rebuild_parameter");
    op(p, '(');
    tensor(p, "HalfStorage", "2", 4, 0, 2, s22, c22);
    op(p, 0x88);
    op(p, '}');
    op(p, 't');
    op(p, 'R');
    op(p, '.');
    f = accepted("parameter", p, &zip);
    t = f ? ear_pt_value_tensor(ear_pt_root(f)) : NULL;
    EAR_CHECK(t && t->dtype == EAR_PT_F16 && t->numel == 4);
    ear_pt_close(f);
    free(zip);

    /* Each bound of a tensor's view. */
    const int64_t s32[] = {3, 2}, huge[] = {2, (int64_t)1 << 62}, neg[] = {-1, 2};
    start(p);
    tensor(p, "FloatStorage", "0", 4, 0, 2, s32, c22);
    op(p, '.');
    refused("3x2 of 4 elements", p, "storage shorter than tensor");
    start(p);
    tensor(p, "FloatStorage", "0", 4, 1, 2, s22, c22);
    op(p, '.');
    refused("offset 1", p, "storage shorter than tensor");
    start(p);
    tensor(p, "FloatStorage", "0", 4, INT64_MAX, 2, s22, c22);
    op(p, '.');
    refused("offset 2^63-1", p, "storage shorter than tensor");
    start(p);
    tensor(p, "FloatStorage", "0", 4, 0, 2, s22, huge);
    op(p, '.');
    refused("stride 2^62", p, "storage shorter than tensor");
    start(p);
    tensor(p, "FloatStorage", "0", 4, 0, 2, huge, c22);
    op(p, '.');
    refused("shape 2^62", p, "storage shorter than tensor");
    start(p);
    tensor(p, "FloatStorage", "0", 4, 0, 2, neg, c22);
    op(p, '.');
    refused("shape -1", p, "non-negative");
    start(p);
    tensor(p, "FloatStorage", "0", 4, -1, 2, s22, c22);
    op(p, '.');
    refused("offset -1", p, "_rebuild_tensor_v2");
    const int64_t ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    start(p);
    tensor(p, "FloatStorage", "0", 4, 0, 9, ones, ones);
    op(p, '.');
    refused("9 dims", p, "9 dimensions");
    start(p);
    tensor(p, "FloatStorage", "0", 5, 0, 2, s22, c22);
    op(p, '.');
    refused("numel 5 of 16 bytes", p, "holds 16 bytes, but the pickle says 5 elements");
    start(p);
    tensor(p, "DoubleStorage", "1", 1, 0, 0, NULL, NULL);
    op(p, '.');
    refused("12 bytes of doubles", p, "holds 12 bytes");
    start(p);
    tensor(p, "FloatStorage", "9", 1, 0, 0, NULL, NULL);
    op(p, '.');
    refused("no data/9", p, "storage 'data/9' is missing");
    start(p);
    op(p, ']');
    op(p, '(');
    tensor(p, "FloatStorage", "0", 4, 0, 0, NULL, NULL);
    tensor(p, "HalfStorage", "0", 8, 0, 0, NULL, NULL);
    op(p, 'e');
    op(p, '.');
    refused("one storage, two types", p, "named twice");

    /* Persistent ids and calls that are not torch's. */
    start(p);
    op(p, '(');
    str(p, "storage");
    str(p, "x");
    op(p, 't');
    op(p, 'Q');
    op(p, '.');
    refused("a short persistent id", p, "persistent id");
    start(p);
    pid(p, "FloatStorage", "0", 4);
    op(p, '.');
    f = accepted("a bare storage", p, &zip);
    EAR_CHECK(f && ear_pt_value_kind(ear_pt_root(f)) == EAR_PT_KIND_OTHER);
    ear_pt_close(f);
    free(zip);
    start(p);
    op(p, '(');
    str(p, "storage");
    glob(p, "builtins", "eval");
    op(p, '.');
    refused("eval in a persistent id", p, "refusing the global builtins.eval");
    start(p);
    glob(p, "torch._utils", "_rebuild_tensor_v2");
    op(p, '(');
    int1(p, 1);
    op(p, 't');
    op(p, 'R');
    op(p, '.');
    refused("_rebuild_tensor_v2(1)", p, "_rebuild_tensor_v2");
    start(p);
    glob(p, "torch._utils", "_rebuild_parameter");
    op(p, ')');
    op(p, 'R');
    op(p, '.');
    refused("_rebuild_parameter()", p, "_rebuild_parameter");
    start(p);
    glob(p, "torch", "FloatStorage");
    op(p, ')');
    op(p, 'R');
    op(p, '.');
    refused("FloatStorage()", p, "calls a storage type");
    free(p);
}

static void test_values(void)
{
    pk *p = malloc(sizeof *p);
    uint8_t *zip;

    /* A checkpoint: the tensors under "state_dict", numbers and strings beside them. */
    const int64_t s4[] = {4}, c1[] = {1};
    start(p);
    op(p, '}');
    op(p, '(');
    str(p, "epoch");
    long8(p, -5);
    str(p, "lr");
    op(p, 'G');
    raw(p, "\x3f\xd0\0\0\0\0\0\0", 8); /* 0.25 big-endian */
    str(p, "name");
    op(p, 'X');
    raw(p, "\x06\0\0\0fl\xc3\xbbte", 10); /* BINUNICODE "flûte" */
    str(p, "bytes");
    op(p, 'U');
    raw(p, "\x03\xff\x00\x01", 4); /* SHORT_BINSTRING: not UTF-8, kept as bytes */
    str(p, "big");
    op(p, 'J');
    raw(p, "\xfe\xff\xff\xff", 4); /* BININT -2 */
    str(p, "u16");
    op(p, 'M');
    raw(p, "\xff\xff", 2); /* BININT2 65535 */
    str(p, "state_dict");
    glob(p, "collections", "OrderedDict");
    op(p, ')');
    op(p, 'R');
    str(p, "w");
    tensor(p, "FloatStorage", "0", 4, 0, 1, s4, c1);
    op(p, 's');
    op(p, '}'); /* BUILD with {'_metadata': ...}: accepted, dropped */
    str(p, "_metadata");
    op(p, '}');
    op(p, 's');
    op(p, 'b');
    op(p, 'u');
    op(p, '.');
    ear_pt_file *f = accepted("checkpoint", p, &zip);
    if (f) {
        const ear_pt_value *root = ear_pt_root(f);
        EAR_CHECK(ear_pt_value_int(ear_pt_dict_get(root, "epoch")) == -5);
        EAR_CHECK(ear_pt_value_float(ear_pt_dict_get(root, "lr")) == 0.25);
        EAR_CHECK(ear_pt_value_float(ear_pt_dict_get(root, "epoch")) == -5.0);
        size_t n = 0;
        const char *s = ear_pt_value_string(ear_pt_dict_get(root, "name"), &n);
        EAR_CHECK(s && n == 6 && strcmp(s, "fl\xc3\xbbte") == 0);
        s = ear_pt_value_string(ear_pt_dict_get(root, "bytes"), &n);
        EAR_CHECK(s && n == 3 && (uint8_t)s[0] == 0xff && s[1] == 0 && s[3] == 0);
        EAR_CHECK(ear_pt_value_int(ear_pt_dict_get(root, "big")) == -2);
        EAR_CHECK(ear_pt_value_int(ear_pt_dict_get(root, "u16")) == 65535);
        EAR_CHECK(ear_pt_tensor_count(f) == 1 && ear_pt_find(f, "w") &&
                  strcmp(ear_pt_tensor_name(f, 0), "w") == 0);
        EAR_CHECK(ear_pt_value_count(ear_pt_dict_get(ear_pt_dict_get(root, "state_dict"),
                                                     "_metadata")) == 0);
        EAR_CHECK(ear_pt_value_kind(NULL) == EAR_PT_KIND_NONE && ear_pt_value_count(NULL) == 0);
    }
    ear_pt_close(f);
    free(zip);

    /* Protocol 4: FRAME, MEMOIZE, STACK_GLOBAL, BINGET of a shared value, TUPLE1-3. */
    start(p);
    p->b[1] = 4;
    op(p, 0x95);
    raw(p, "\x05\0\0\0\0\0\0\0", 8);
    str(p, "k");
    op(p, 0x94);
    op(p, 'h');
    op(p, 0);
    op(p, 0x86);
    op(p, 0x85);
    op(p, 'N');
    op(p, 0x88);
    op(p, 0x89);
    op(p, 0x87);
    op(p, 0x86);
    op(p, '.');
    f = accepted("protocol 4 tuples", p, &zip);
    if (f) {
        const ear_pt_value *root = ear_pt_root(f);
        EAR_CHECK(ear_pt_value_kind(root) == EAR_PT_KIND_TUPLE && ear_pt_value_count(root) == 2);
        const ear_pt_value *pair = ear_pt_value_item(ear_pt_value_item(root, 0), 0);
        EAR_CHECK(ear_pt_value_count(pair) == 2 &&
                  ear_pt_value_item(pair, 0) == ear_pt_value_item(pair, 1));
        EAR_CHECK(ear_pt_value_int(ear_pt_value_item(ear_pt_value_item(root, 1), 1)) == 1);
    }
    ear_pt_close(f);
    free(zip);

    /* 50001 items in one list (BINGETs of one shared None): linear, no bound hit. */
    pk *q = malloc(sizeof *q);
    start(q);
    op(q, ']');
    op(q, 'N');
    op(q, 'q');
    op(q, 0);
    op(q, 'a');
    for (int k = 0; k < 10; k++) {
        op(q, '(');
        for (int i = 0; i < 5000; i++) {
            op(q, 'h');
            op(q, 0);
        }
        op(q, 'e');
    }
    op(q, '.');
    f = accepted("50001 items", q, &zip);
    EAR_CHECK(f && ear_pt_value_count(ear_pt_root(f)) == 50001);
    ear_pt_close(f);
    free(zip);
    free(q);
    free(p);
}

static void test_refusals(void)
{
    pk *p = malloc(sizeof *p);
    static const struct {
        const char *what;
        const char *bytes; /* after PROTO 2 */
        size_t n;
        const char *reason;
    } cases[] = {
#define C(what, bytes, reason) {what, bytes, sizeof bytes - 1, reason}
        C("os.system by STACK_GLOBAL", "\x8c\x02os\x8c\x06system\x93.",
          "refusing the global os.system"),
        C("posix.system", "cposix\nsystem\n.", "refusing the global posix.system"),
        C("a class of the pickler's", "c__main__\nAudioVisualCLIP\n.", "__main__.AudioVisualCLIP"),
        C("GLOBAL of one line", "cposix", "not two lines"),
        C("STACK_GLOBAL of ints", "K\x01K\x02\x93.", "without two strings"),
        C("REDUCE of a list", "])R.", "calls a list"),
        C("REDUCE with a list", "ccollections\nOrderedDict\n]R.", "not a tuple"),
        C("OrderedDict(1)", "ccollections\nOrderedDict\nK\x01\x85R.", "called with arguments"),
        C("BUILD on a list", "]}b.", "BUILD"),
        C("BUILD with an int", "}K\x01" "b.", "BUILD"),
        C("APPEND to a dict", "}Na.", "APPEND at byte"),
        C("APPENDS to a tuple", ")(Ne.", "APPENDS at byte"),
        C("SETITEM on a list", "]NNs.", "SETITEM at byte"),
        C("SETITEMS of 3 items", "}(NNNu.", "with 3 items"),
        C("SETITEMS with nothing under", "(NNu.", "no container under its MARK"),
        C("APPEND above a MARK", "](a.", "finds the stack empty"),
        C("TUPLE without MARK", "Nt.", "without a MARK"),
        C("TUPLE2 of one", "N\x86.", "too few items"),
        C("BINUNICODE of 4 GiB", "X\xff\xff\xff\xff", "claims 4294967295 bytes"),
        C("BINUNICODE8 of 2^63", "\x8d\0\0\0\0\0\0\0\x80", "claims 9223372036854775808 bytes"),
        C("SHORT_BINUNICODE past the end", "\x8c\x05" "ab", "claims 5 bytes"),
        C("bad UTF-8", "\x8c\x02\xff\xfe.", "not valid UTF-8"),
        C("overlong UTF-8", "\x8c\x02\xc0\xaf.", "not valid UTF-8"),
        C("BINSTRING of -1", "T\xff\xff\xff\xff", "negative length"),
        C("LONG_BINPUT 2^32-1", "Nr\xff\xff\xff\xff.", "memo index 4294967295"),
        C("BINPUT with nothing", "q\x00.", "finds the stack empty"),
        C("BINGET of nothing", "h\x03.", "memo entry 3"),
        C("LONG_BINGET of nothing", "j\xff\xff\xff\x7f.", "memo entry 2147483647"),
        C("LONG1 of 9 bytes", "\x8a\x09\1\1\1\1\1\1\1\1\1.", "integer of 9 bytes"),
        C("LONG1 past the end", "\x8a\x09\1", "runs past the end"),
        C("FRAME past the end", "\x95\xff\0\0\0\0\0\0\0N.", "FRAME at byte"),
        C("BINFLOAT cut", "G\0\0", "runs past the end"),
        C("no STOP", "N", "ends without STOP"),
        C("STOP with two values", "NN.", "STOP with 2 values"),
        C("STOP with a MARK open", "N(.", "1 MARKs"),
        C("STOP with nothing", ".", "STOP with 0 values"),
        C("opcode 0xff", "\xff", "opcode 0xff"),
        C("opcode INST", "i__main__\nX\n", "opcode 'i'"),
        C("opcode NEWOBJ", "\x81", "opcode 0x81"),
        C("opcode POP", "N0", "opcode '0'"),
        C("a dict in itself", "}q\x00Nh\x00s.", "contains itself"),
        C("a list in a tuple in itself", "]q\x00h\x00\x85" "a.", "contains itself"),
        C("a key twice", "}(\x8c\x01kN\x8c\x01kNu.", "the key 'k' twice"),
        C("protocol 6", "", "pickle protocol 6"),
        C("protocol 1", "", "pickle protocol 1"),
#undef C
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        start(p);
        if (strstr(cases[i].reason, "protocol"))
            p->b[1] = (uint8_t)(cases[i].reason[strlen(cases[i].reason) - 1] - '0');
        raw(p, cases[i].bytes, cases[i].n);
        if (strstr(cases[i].reason, "protocol"))
            op(p, 'N'), op(p, '.');
        refused(cases[i].what, p, cases[i].reason);
    }

    /* Nesting: 100 tuples, 100 lists by APPEND, 5000 MARKs. */
    start(p);
    op(p, 'N');
    for (int i = 0; i < 100; i++)
        op(p, 0x85);
    op(p, '.');
    refused("100 nested tuples", p, "nested more than 64 deep");
    /* The root is at depth 0: 65 lists reach depth 64, the most allowed. */
    start(p);
    for (int i = 0; i < 66; i++)
        op(p, ']');
    for (int i = 0; i < 65; i++)
        op(p, 'a');
    op(p, '.');
    refused("66 nested lists", p, "nested more than 64 deep");
    start(p);
    for (int i = 0; i < 65; i++)
        op(p, ']');
    for (int i = 0; i < 64; i++)
        op(p, 'a');
    op(p, '.');
    uint8_t *zip;
    ear_pt_file *f = accepted("65 nested lists", p, &zip);
    ear_pt_close(f);
    free(zip);
    start(p);
    for (int i = 0; i < 5000; i++)
        op(p, '(');
    refused("5000 MARKs", p, "more than 4096 nested MARKs");
    free(p);
}

int main(void)
{
    test_tensors();
    test_values();
    test_refusals();
    return ear_test_finish();
}
