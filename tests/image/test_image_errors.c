/* Bad input to ear_image_decode: each gets -1, a message, a zeroed image and no
 * leak (the sanitizer build checks that), never a crash or a libjpeg exit(). */
#include "image/image.h"
#include "test.h"

#include <stdint.h>

static uint8_t *read_fixture(const char *name, size_t *size)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/image/%s", ear_test_env("EAR_SOURCE_DIR", "."),
             name);
    ear_error err = {{0}};
    uint8_t *data = ear_file_read(path, 1 << 24, size, &err);
    EAR_CHECK_MSG(data != NULL, "%s", err.message);
    return data;
}

/* Decodes what must fail; checks the message holds `expect` (when given) and
 * that the image is left empty. Returns 1 when it failed properly. */
static int refused(const char *what, const uint8_t *data, size_t size, const char *expect)
{
    ear_image img;
    memset(&img, 0x5a, sizeof img); /* garbage in: the decoder must zero it */
    ear_error err = {{0}};
    int rc = ear_image_decode(data, size, &img, &err);
    int ok = rc == -1 && err.message[0] != '\0' && img.rgb == NULL && img.width == 0 &&
             img.height == 0 && (!expect || strstr(err.message, expect));
    EAR_CHECK_MSG(ok, "%s: rc %d, message '%s' (expected '%s')", what, rc, err.message,
                  expect ? expect : "any");
    if (rc == 0)
        ear_image_free(&img);
    return ok;
}

static uint32_t crc32_of(const uint8_t *data, size_t size)
{
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < size; i++) {
        crc ^= data[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static void put_be32(uint8_t *out, uint32_t value)
{
    out[0] = (uint8_t)(value >> 24);
    out[1] = (uint8_t)(value >> 16);
    out[2] = (uint8_t)(value >> 8);
    out[3] = (uint8_t)value;
}

/* A real PNG's IHDR rewritten to claim another size, its CRC fixed. */
static void test_png_claiming(const uint8_t *png, size_t size, uint32_t width, uint32_t height,
                              const char *expect)
{
    uint8_t *copy = malloc(size);
    EAR_CHECK(copy != NULL);
    if (!copy)
        return;
    memcpy(copy, png, size);
    /* signature (8), length (4), "IHDR" at 12, width at 16, height at 20, CRC at 29 */
    EAR_CHECK(memcmp(copy + 12, "IHDR", 4) == 0);
    put_be32(copy + 16, width);
    put_be32(copy + 20, height);
    put_be32(copy + 29, crc32_of(copy + 12, 17));
    char what[64];
    snprintf(what, sizeof what, "PNG claiming %u x %u", width, height);
    double start = ear_now_ms();
    refused(what, copy, size, expect);
    /* Refused from the header alone, not after gigabytes of allocation. */
    EAR_CHECK_MSG(ear_now_ms() - start < 1000, "%s took %.0f ms", what, ear_now_ms() - start);
    free(copy);
}

/* A JPEG's frame header (SOF0/SOF2) rewritten to claim another size. */
static void test_jpeg_claiming(const uint8_t *jpeg, size_t size, uint16_t width, uint16_t height,
                               const char *expect)
{
    uint8_t *copy = malloc(size);
    EAR_CHECK(copy != NULL);
    if (!copy)
        return;
    memcpy(copy, jpeg, size);
    size_t at = 2;
    int patched = 0;
    while (at + 9 < size && copy[at] == 0xff) {
        uint8_t marker = copy[at + 1];
        size_t length = (size_t)copy[at + 2] << 8 | copy[at + 3];
        if (marker == 0xc0 || marker == 0xc2) {
            copy[at + 5] = (uint8_t)(height >> 8);
            copy[at + 6] = (uint8_t)height;
            copy[at + 7] = (uint8_t)(width >> 8);
            copy[at + 8] = (uint8_t)width;
            patched = 1;
            break;
        }
        at += 2 + length;
    }
    EAR_CHECK_MSG(patched, "no SOF0/SOF2 marker found");
    char what[64];
    snprintf(what, sizeof what, "JPEG claiming %u x %u", width, height);
    if (patched)
        refused(what, copy, size, expect);
    free(copy);
}

/* A frame header claiming more pixels than the scan holds: the scan ends at a
 * marker, which libjpeg only warns about and pads after, and PIL accepts it so. */
static void test_jpeg_accepting_short_data(const uint8_t *jpeg, size_t size)
{
    uint8_t *copy = malloc(size);
    EAR_CHECK(copy != NULL);
    if (!copy)
        return;
    memcpy(copy, jpeg, size);
    EAR_CHECK(copy[2] == 0xff && copy[3] == 0xe0); /* PIL writes JFIF (APP0), then tables */
    size_t at = 2;
    while (at + 9 < size && copy[at] == 0xff && copy[at + 1] != 0xc0)
        at += 2 + ((size_t)copy[at + 2] << 8 | copy[at + 3]);
    ear_image img = {0};
    ear_error err = {{0}};
    if (at + 9 < size && copy[at + 1] == 0xc0) {
        copy[at + 5] = 1500 >> 8;
        copy[at + 6] = 1500 & 0xff;
        copy[at + 7] = 2000 >> 8;
        copy[at + 8] = 2000 & 0xff;
        int rc = ear_image_decode(copy, size, &img, &err);
        EAR_CHECK_MSG(rc == 0 && img.width == 2000 && img.height == 1500,
                      "JPEG claiming 2000 x 1500 with 77 x 52 of data: rc %d (%s)", rc,
                      err.message);
    } else {
        EAR_CHECK_MSG(0, "no SOF0 marker in the JPEG fixture");
    }
    ear_image_free(&img);
    free(copy);
}

/* Every cut of a file short of its last `tail` bytes must be refused. */
static void test_truncations(const char *name, size_t tail)
{
    size_t size = 0;
    uint8_t *data = read_fixture(name, &size);
    if (!data)
        return;
    size_t accepted = 0;
    for (size_t cut = 0; cut + tail < size; cut++) {
        ear_image img = {0};
        ear_error err = {{0}};
        if (ear_image_decode(data, cut, &img, &err) == 0) {
            if (accepted++ == 0)
                EAR_CHECK_MSG(0, "%s cut to %zu of %zu bytes was accepted", name, cut, size);
            ear_image_free(&img);
        } else if (err.message[0] == '\0') {
            EAR_CHECK_MSG(0, "%s cut to %zu bytes: no message", name, cut);
        }
    }
    EAR_CHECK_MSG(accepted == 0, "%s: %zu truncations accepted", name, accepted);
    char what[300];
    snprintf(what, sizeof what, "%s cut in half", name);
    refused(what, data, size / 2, "truncated");
    ear_image whole = {0};
    ear_error err = {{0}};
    EAR_CHECK_MSG(ear_image_decode(data, size, &whole, &err) == 0, "%s whole: %s", name,
                  err.message);
    ear_image_free(&whole);
    free(data);
}

/* Flipped bytes must give an error or an image, never a crash or a leak. */
static void test_corruption(const char *name)
{
    size_t size = 0;
    uint8_t *data = read_fixture(name, &size);
    if (!data)
        return;
    uint32_t state = 12345;
    int failures = 0, decoded = 0;
    for (int trial = 0; trial < 300; trial++) {
        uint8_t *copy = malloc(size);
        if (!copy)
            break;
        memcpy(copy, data, size);
        for (int k = 0; k < 1 + trial % 4; k++) {
            state = state * 1664525u + 1013904223u;
            copy[8 + (state >> 8) % (size - 8)] ^= (uint8_t)(1 + (state >> 24) % 255);
        }
        ear_image img = {0};
        ear_error err = {{0}};
        if (ear_image_decode(copy, size, &img, &err) == 0) {
            decoded++;
            EAR_CHECK(img.rgb != NULL && img.width > 0 && img.height > 0);
            ear_image_free(&img);
        } else {
            failures++;
            EAR_CHECK_MSG(err.message[0] != '\0' && img.rgb == NULL, "%s trial %d", name, trial);
        }
        free(copy);
    }
    printf("%s with flipped bytes: %d refused, %d decoded anyway\n", name, failures, decoded);
    EAR_CHECK(failures + decoded == 300);
    free(data);
}

int main(void)
{
    static const uint8_t text[] = "id\tlabel\ncow\tA cow.\n";
    uint8_t noise[4096];
    uint32_t state = 99;
    for (size_t i = 0; i < sizeof noise; i++) {
        state = state * 1664525u + 1013904223u;
        noise[i] = (uint8_t)(state >> 24);
    }
    ear_error err = {{0}};
    ear_image img;

    refused("NULL data", NULL, 10, "empty");
    refused("zero bytes", text, 0, "empty");
    refused("random bytes", noise, sizeof noise, "not a JPEG or PNG");
    refused("text", text, sizeof text - 1, "not a JPEG or PNG");
    refused("one byte", (const uint8_t *)"\xff", 1, "not a JPEG or PNG");
    refused("GIF", (const uint8_t *)"GIF89a\x01\x00\x01\x00", 10, "GIF");
    refused("PNG signature only", (const uint8_t *)"\x89PNG\r\n\x1a\n", 8, "truncated");
    refused("JPEG start only", (const uint8_t *)"\xff\xd8\xff", 3, "bad JPEG");
    uint8_t png_then_noise[600];
    memcpy(png_then_noise, "\x89PNG\r\n\x1a\n", 8);
    memcpy(png_then_noise + 8, noise, sizeof png_then_noise - 8);
    refused("PNG signature then noise", png_then_noise, sizeof png_then_noise, "bad PNG");
    uint8_t jpeg_then_noise[600];
    memcpy(jpeg_then_noise, "\xff\xd8\xff\xe0", 4);
    memcpy(jpeg_then_noise + 4, noise, sizeof jpeg_then_noise - 4);
    refused("JPEG marker then noise", jpeg_then_noise, sizeof jpeg_then_noise, "bad JPEG");
    EAR_CHECK(ear_image_decode(text, sizeof text, NULL, &err) == -1 && err.message[0]);
    memset(&img, 0, sizeof img);
    ear_image_free(&img); /* a zeroed image, twice, and NULL: all harmless */
    ear_image_free(&img);
    ear_image_free(NULL);

    size_t png_size = 0, jpeg_size = 0;
    uint8_t *png = read_fixture("tiny_20x13.png", &png_size);
    uint8_t *jpeg = read_fixture("photo_77x52.jpg", &jpeg_size);
    if (png) {
        test_png_claiming(png, png_size, 100000, 100000, "too large");
        test_png_claiming(png, png_size, 16385, 1, "too large");
        test_png_claiming(png, png_size, 10001, 10000, "too large"); /* each side fine, 100 Mpx not */
        test_png_claiming(png, png_size, 0x7fffffff, 0x7fffffff, "too large");
        test_png_claiming(png, png_size, 0, 13, "bad PNG");
        /* Within the limits but the data is for 20 x 13: refused, not padded. */
        test_png_claiming(png, png_size, 2000, 1300, "bad PNG");
        uint8_t *bad_crc = malloc(png_size);
        if (bad_crc) {
            memcpy(bad_crc, png, png_size);
            bad_crc[29] ^= 1; /* the IHDR CRC */
            refused("PNG with a bad IHDR CRC", bad_crc, png_size, "bad PNG");
            free(bad_crc);
        }
    }
    if (jpeg) {
        test_jpeg_claiming(jpeg, jpeg_size, 60000, 60000, "too large");
        test_jpeg_claiming(jpeg, jpeg_size, 16385, 8, "too large");
        test_jpeg_claiming(jpeg, jpeg_size, 0, 52, "bad JPEG");
        test_jpeg_accepting_short_data(jpeg, jpeg_size);
    }
    /* The PNG's IEND chunk (12 bytes) carries nothing; a JPEG must reach its EOI. */
    test_truncations("tiny_20x13.png", 12);
    test_truncations("interlaced_23x17.png", 12);
    test_truncations("palette_50x37.png", 12);
    test_truncations("photo_77x52.jpg", 0);
    test_truncations("wide_240x64.jpg", 0);
    test_truncations("cmyk_40x30.jpg", 0);
    test_corruption("rgba_64x45.png");
    test_corruption("photo_77x52.jpg");
    test_corruption("wide_240x64.jpg");
    free(png);
    free(jpeg);
    return ear_test_finish();
}
