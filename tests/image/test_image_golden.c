/* The image front end against PIL and PyTorch (fixtures from tools/make_image_fixtures.py,
 * listed in tests/fixtures/image/golden.tsv), plus properties the fixtures cannot show. */
#include "image/image.h"
#include "test.h"

#include <stdint.h>

/* The largest |C - PyTorch| allowed on the normalised tensor (the model's input). */
#define GOLDEN_TOLERANCE 1e-5

/* The normalisation tools/make_image_fixtures.py uses. */
static const float golden_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float golden_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

static double worst_tensor_difference;

static void fixture_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/tests/fixtures/image/%s", ear_test_env("EAR_SOURCE_DIR", "."), name);
}

static uint8_t *read_fixture(const char *name, size_t *size)
{
    char path[1024];
    fixture_path(path, sizeof path, name);
    ear_error err = {{0}};
    uint8_t *data = ear_file_read(path, 1 << 24, size, &err);
    EAR_CHECK_MSG(data != NULL, "%s", err.message);
    return data;
}

/* A binary PPM ("P6 W H 255" then the pixels) as an ear_image; 0 on success. */
static int read_ppm(const char *name, ear_image *img)
{
    size_t size = 0;
    uint8_t *data = read_fixture(name, &size);
    int width = 0, height = 0, maximum = 0, header = 0;
    memset(img, 0, sizeof *img);
    if (!data)
        return -1;
    int parsed = sscanf((const char *)data, "P6 %d %d %d%n", &width, &height, &maximum, &header);
    header++; /* the one whitespace byte after 255 */
    int ok = parsed == 3 && maximum == 255 && width > 0 && height > 0 &&
             (size_t)header + (size_t)width * (size_t)height * 3 == size;
    EAR_CHECK_MSG(ok, "%s: not the PPM expected", name);
    if (ok) {
        img->width = width;
        img->height = height;
        img->rgb = malloc((size_t)width * (size_t)height * 3);
        if (img->rgb)
            memcpy(img->rgb, data + header, (size_t)width * (size_t)height * 3);
    }
    free(data);
    return ok && img->rgb ? 0 : -1;
}

static void test_golden(const char *file, int size, int row_step)
{
    char stem[256], name[300];
    snprintf(stem, sizeof stem, "%s", file);
    char *dot = strrchr(stem, '.');
    if (dot)
        *dot = '\0';
    ear_image img = {0}, expected = {0};
    float *tensor = NULL, *want = NULL;
    size_t size_bytes = 0;
    uint8_t *data = read_fixture(file, &size_bytes);
    snprintf(name, sizeof name, "%s.ppm", stem);
    if (!data || read_ppm(name, &expected) != 0)
        goto done;

    ear_error err = {{0}};
    int rc = ear_image_decode(data, size_bytes, &img, &err);
    EAR_CHECK_MSG(rc == 0, "%s: %s", file, err.message);
    if (rc != 0)
        goto done;
    EAR_CHECK_MSG(img.width == expected.width && img.height == expected.height,
                  "%s: decoded %d x %d, PIL says %d x %d", file, img.width, img.height,
                  expected.width, expected.height);
    if (img.width != expected.width || img.height != expected.height)
        goto done;
    size_t bytes = (size_t)img.width * (size_t)img.height * 3, differing = 0;
    int max_pixel_difference = 0;
    for (size_t i = 0; i < bytes; i++) {
        int d = abs((int)img.rgb[i] - (int)expected.rgb[i]);
        differing += d != 0;
        if (d > max_pixel_difference)
            max_pixel_difference = d;
    }
    EAR_CHECK_MSG(max_pixel_difference == 0, "%s: %zu of %zu samples differ from PIL, by up to %d",
                  file, differing, bytes, max_pixel_difference);

    int ndim = 0;
    size_t shape[4] = {0};
    int rows = (size + row_step - 1) / row_step;
    snprintf(name, sizeof name, "%s_%d.npy", stem, size);
    char path[1024];
    fixture_path(path, sizeof path, name);
    want = ear_npy_read_f32(path, &ndim, shape, &err);
    EAR_CHECK_MSG(want != NULL, "%s", err.message);
    if (!want)
        goto done;
    EAR_CHECK_MSG(ndim == 3 && shape[0] == 3 && shape[1] == (size_t)rows && shape[2] == (size_t)size,
                  "%s: shape [%zu, %zu, %zu], expected [3, %d, %d]", name, shape[0], shape[1],
                  shape[2], rows, size);
    if (ndim != 3 || shape[0] != 3 || shape[1] != (size_t)rows || shape[2] != (size_t)size)
        goto done;
    tensor = malloc(3 * (size_t)size * (size_t)size * sizeof *tensor);
    EAR_CHECK(tensor != NULL);
    if (!tensor)
        goto done;
    rc = ear_image_preprocess(&img, size, golden_mean, golden_std, tensor, &err);
    EAR_CHECK_MSG(rc == 0, "%s at %d: %s", file, size, err.message);
    if (rc != 0)
        goto done;
    double max_difference = 0;
    for (int c = 0; c < 3; c++)
        for (int r = 0; r < rows; r++)
            for (int x = 0; x < size; x++) {
                double got = tensor[((size_t)c * size + (size_t)r * row_step) * size + x];
                double d = fabs(got - want[((size_t)c * rows + r) * size + x]);
                if (!(d <= max_difference)) /* NaN counts as the worst */
                    max_difference = isnan(d) ? INFINITY : d;
            }
    EAR_CHECK_MSG(max_difference <= GOLDEN_TOLERANCE, "%s at %d: max |C - torch| = %g", file, size,
                  max_difference);
    printf("%-22s %4d x %-4d crop %3d: pixels max diff %d, tensor max diff %.3g\n", file,
           img.width, img.height, size, max_pixel_difference, max_difference);
    if (max_difference > worst_tensor_difference)
        worst_tensor_difference = max_difference;
done:
    free(data);
    free(tensor);
    free(want);
    ear_image_free(&img);
    ear_image_free(&expected);
}

static void test_golden_cases(void)
{
    size_t size = 0;
    uint8_t *list = read_fixture("golden.tsv", &size);
    int cases = 0;
    if (!list)
        return;
    char *save = NULL;
    for (char *line = strtok_r((char *)list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char file[256];
        int crop = 0, step = 0;
        if (line[0] == '#')
            continue;
        int ok = sscanf(line, "%255s %d %d", file, &crop, &step) == 3 && crop > 0 && step > 0;
        EAR_CHECK_MSG(ok, "golden.tsv: bad line '%s'", line);
        if (ok) {
            test_golden(file, crop, step);
            cases++;
        }
    }
    EAR_CHECK_MSG(cases >= 10, "golden.tsv lists only %d cases", cases);
    free(list);
}

/* A uniform image stays uniform through any resize (the weights of every output
 * sum to one), whatever the aspect ratio. */
static void test_uniform(int width, int height, int size)
{
    ear_image img = {.width = width, .height = height,
                     .rgb = malloc((size_t)width * (size_t)height * 3)};
    float *out = malloc(3 * (size_t)size * (size_t)size * sizeof *out);
    const uint8_t colour[3] = {7, 128, 250};
    EAR_CHECK(img.rgb && out);
    if (!img.rgb || !out)
        goto done;
    for (size_t i = 0; i < (size_t)width * (size_t)height; i++)
        memcpy(img.rgb + 3 * i, colour, 3);
    ear_error err = {{0}};
    int rc = ear_image_preprocess(&img, size, golden_mean, golden_std, out, &err);
    EAR_CHECK_MSG(rc == 0, "%d x %d to %d: %s", width, height, size, err.message);
    if (rc != 0)
        goto done;
    double max_difference = 0;
    for (int c = 0; c < 3; c++) {
        double want = ((double)colour[c] / 255.0 - golden_mean[c]) / golden_std[c];
        for (size_t i = 0; i < (size_t)size * (size_t)size; i++) {
            double d = fabs(out[(size_t)c * size * size + i] - want);
            if (!(d <= max_difference))
                max_difference = isnan(d) ? INFINITY : d;
        }
    }
    EAR_CHECK_MSG(max_difference < 1e-5, "%d x %d to %d: uniform input varies by %g", width,
                  height, size, max_difference);
done:
    free(img.rgb);
    free(out);
}

/* An image already size x size is only normalised, sample for sample. */
static void test_identity(void)
{
    enum { side = 9 };
    uint8_t pixels[side * side * 3];
    for (int i = 0; i < side * side * 3; i++)
        pixels[i] = (uint8_t)(i * 37 + 11);
    ear_image img = {.width = side, .height = side, .rgb = pixels};
    float out[3 * side * side];
    ear_error err = {{0}};
    EAR_CHECK(ear_image_preprocess(&img, side, golden_mean, golden_std, out, &err) == 0);
    int exact = 1;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < side * side; i++) {
            float want = ((float)pixels[3 * i + c] / 255.0f - golden_mean[c]) / golden_std[c];
            exact &= out[c * side * side + i] == want;
        }
    EAR_CHECK_MSG(exact, "a %d x %d image at crop %d is not just normalised", side, side, side);
}

/* The crop is centred: a mark in the middle of a tall image lands in the middle. */
static void test_centre(void)
{
    enum { width = 20, height = 61, size = 20 };
    static uint8_t pixels[width * height * 3];
    memset(pixels, 0, sizeof pixels);
    memset(pixels + (size_t)30 * width * 3, 255, width * 3); /* row 30 of 61: the centre */
    ear_image img = {.width = width, .height = height, .rgb = pixels};
    static float out[3 * size * size];
    const float zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};
    ear_error err = {{0}};
    EAR_CHECK(ear_image_preprocess(&img, size, zero, one, out, &err) == 0);
    int brightest = 0;
    for (int r = 1; r < size; r++)
        if (out[r * size] > out[brightest * size])
            brightest = r;
    /* crop top = round((61 - 20) / 2) = round(20.5) = 20 (halves to even): row 30 -> 10 */
    EAR_CHECK_MSG(brightest == 10 && out[10 * size] == 1.0f, "the mark is at row %d (%g)",
                  brightest, (double)out[brightest * size]);
}

static void test_preprocess_errors(void)
{
    uint8_t pixels[4 * 4 * 3] = {0};
    ear_image img = {.width = 4, .height = 4, .rgb = pixels}, empty = {0};
    float out[3 * 4 * 4];
    const float zero_std[3] = {0.5f, 0, 0.5f};
    ear_error err = {{0}};
    EAR_CHECK(ear_image_preprocess(&empty, 4, golden_mean, golden_std, out, &err) == -1 &&
              strstr(err.message, "no image"));
    EAR_CHECK(ear_image_preprocess(NULL, 4, golden_mean, golden_std, out, &err) == -1);
    EAR_CHECK(ear_image_preprocess(&img, 0, golden_mean, golden_std, out, &err) == -1 &&
              strstr(err.message, "crop size"));
    EAR_CHECK(ear_image_preprocess(&img, EAR_IMAGE_MAX_CROP + 1, golden_mean, golden_std, out,
                                   &err) == -1);
    err.message[0] = '\0';
    EAR_CHECK(ear_image_preprocess(&img, 4, golden_mean, zero_std, out, &err) == -1 &&
              strstr(err.message, "channel 1"));
    EAR_CHECK(ear_image_preprocess(&img, 4, golden_mean, golden_std, NULL, &err) == -1);
}

int main(void)
{
    test_golden_cases();
    printf("worst tensor difference over the golden cases: %.3g\n", worst_tensor_difference);
    test_uniform(1, 1, 7);
    test_uniform(3, 1000, 5);
    test_uniform(16384, 2, 8);
    test_uniform(333, 77, 224);
    test_uniform(64, 64, 64);
    test_identity();
    test_centre();
    test_preprocess_errors();
    return ear_test_finish();
}
