/* JPEG (libjpeg-turbo) and PNG (libpng) to 8-bit RGB, matching what the reference
 * service gets from PIL: Image.open, alpha composited over white for RGBA/LA/P,
 * then convert('RGB').
 *
 * Both libraries report fatal errors by longjmp. Each decoder keeps everything it
 * allocates in a struct that lives in its caller's frame, so after a longjmp the
 * caller still sees every pointer and frees it on its one cleanup path. */
#include "image/image.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

/* A progressive JPEG keeps every coefficient of the image (2 bytes a sample:
 * 600 MB for 100 Mpx at 4:4:4); past this libjpeg refuses instead of growing. */
#define JPEG_MAX_MEMORY (1024L * 1024 * 1024)

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static int check_dimensions(const char *format, unsigned long width, unsigned long height,
                            ear_error *err)
{
    if (width == 0 || height == 0)
        return ear_error_set(err, "%s image has no pixels (%lu x %lu)", format, width, height);
    if (width > EAR_IMAGE_MAX_SIDE || height > EAR_IMAGE_MAX_SIDE ||
        (double)width * (double)height > (double)EAR_IMAGE_MAX_PIXELS)
        return ear_error_set(err,
                             "%s image too large (%lu x %lu pixels; the limit is %d a side and "
                             "%ld in all)",
                             format, width, height, EAR_IMAGE_MAX_SIDE, EAR_IMAGE_MAX_PIXELS);
    return 0;
}

/* PIL's Image.alpha_composite(white, pixel) for one colour channel, with the
 * integer arithmetic of its libImaging/AlphaComposite.c (7 extra bits of
 * precision, divisions by 255 done by shifts) so results match it bit for bit.
 * Over opaque white PIL's coef1 = alpha * 255 * 255 * 128 / (255 * 255) is
 * exactly alpha * 128, which spares a division per sample here.
 * tools/make_image_fixtures.py checks this rule against PIL for every pair. */
static uint8_t composite_over_white(unsigned value, unsigned alpha)
{
    enum { precision_bits = 7 };
    if (alpha == 0)
        return 255;
    unsigned coef1 = alpha << precision_bits;
    unsigned coef2 = (255u << precision_bits) - coef1;
    unsigned mixed = value * coef1 + 255 * coef2 + (0x80u << precision_bits);
    return (uint8_t)((((mixed >> 8) + mixed) >> 8) >> precision_bits);
}

/* One row of 1 (gray), 2 (gray, alpha), 3 (RGB) or 4 (RGBA) channels to RGB. */
static void row_to_rgb(const uint8_t *in, int channels, int width, uint8_t *out)
{
    for (int x = 0; x < width; x++, out += 3) {
        switch (channels) {
        case 1:
            out[0] = out[1] = out[2] = in[x];
            break;
        case 2:
            out[0] = out[1] = out[2] = composite_over_white(in[2 * x], in[2 * x + 1]);
            break;
        case 3:
            memcpy(out, in + 3 * x, 3);
            break;
        default:
            for (int c = 0; c < 3; c++)
                out[c] = composite_over_white(in[4 * x + c], in[4 * x + 3]);
            break;
        }
    }
}

/* One row of 2 (gray, alpha) or 4 (RGBA) channels to RGB, the alpha dropped. */
static void row_to_rgb_dropping_alpha(const uint8_t *in, int channels, int width, uint8_t *out)
{
    for (int x = 0; x < width; x++, out += 3) {
        if (channels == 2) {
            out[0] = out[1] = out[2] = in[2 * x];
        } else {
            memcpy(out, in + 4 * x, 3);
        }
    }
}

/* PIL's CMYK -> RGB (libImaging/Convert.c cmyk2rgb) on PIL's "CMYK;I" samples:
 * it reads every 4-channel JPEG as Adobe-inverted, and so does this. */
static void cmyk_row_to_rgb(const uint8_t *in, int width, uint8_t *out)
{
    for (int x = 0; x < width; x++, in += 4, out += 3) {
        int not_black = in[3]; /* 255 - (255 - k) */
        for (int c = 0; c < 3; c++) {
            int product = (255 - in[c]) * not_black + 128;
            int value = not_black - (((product >> 8) + product) >> 8);
            out[c] = (uint8_t)(value < 0 ? 0 : value > 255 ? 255 : value);
        }
    }
}

/* ------------------------------------------------------------------ JPEG */

typedef struct jpeg_failure {
    struct jpeg_error_mgr manager; /* first: libjpeg sees only this part */
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_failure;

typedef struct jpeg_decoder {
    struct jpeg_decompress_struct info;
    jpeg_failure failure;
    int created;
    uint8_t *row;
    uint8_t *rgb;
} jpeg_decoder;

static void jpeg_fail(j_common_ptr common)
{
    jpeg_failure *failure = (jpeg_failure *)common->err;
    common->err->format_message(common, failure->message);
    longjmp(failure->jump, 1);
}

/* Warnings are not printed. Running out of data is fatal, as it is for PIL
 * (which says "image file is truncated"): libjpeg would pad with gray. Corrupt
 * entropy data that libjpeg only warns about decodes, as it does in PIL. */
static void jpeg_note(j_common_ptr common, int level)
{
    if (level < 0) {
        common->err->num_warnings++;
        if (common->err->msg_code == JWRN_JPEG_EOF) {
            jpeg_failure *failure = (jpeg_failure *)common->err;
            snprintf(failure->message, sizeof failure->message, "truncated file");
            longjmp(failure->jump, 1);
        }
    }
}

/* Everything that may longjmp; the caller cleans up. */
static int jpeg_decode_into(jpeg_decoder *d, const uint8_t *data, size_t size, ear_image *img,
                            ear_error *err)
{
    if (setjmp(d->failure.jump))
        return ear_error_set(err, "bad JPEG: %s", d->failure.message);
    jpeg_create_decompress(&d->info);
    d->created = 1;
    d->info.mem->max_memory_to_use = JPEG_MAX_MEMORY;
    jpeg_mem_src(&d->info, data, (unsigned long)size);
    jpeg_read_header(&d->info, TRUE);
    if (check_dimensions("JPEG", d->info.image_width, d->info.image_height, err) != 0)
        return -1;
    switch (d->info.num_components) {
    case 1:
        d->info.out_color_space = JCS_GRAYSCALE;
        break;
    case 3:
        d->info.out_color_space = JCS_RGB;
        break;
    case 4: /* CMYK or YCCK */
        d->info.out_color_space = JCS_CMYK;
        break;
    default:
        return ear_error_set(err, "unsupported JPEG: %d colour components",
                             d->info.num_components);
    }
    jpeg_start_decompress(&d->info);
    int width = (int)d->info.output_width, height = (int)d->info.output_height;
    int channels = d->info.output_components;
    d->rgb = malloc((size_t)width * (size_t)height * 3);
    d->row = malloc((size_t)width * (size_t)channels);
    if (!d->rgb || !d->row)
        return ear_error_set(err, "out of memory for a %d x %d JPEG", width, height);
    while (d->info.output_scanline < d->info.output_height) {
        size_t y = d->info.output_scanline;
        JSAMPROW row = d->row;
        jpeg_read_scanlines(&d->info, &row, 1);
        uint8_t *out = d->rgb + y * (size_t)width * 3;
        if (channels == 4)
            cmyk_row_to_rgb(d->row, width, out);
        else
            row_to_rgb(d->row, channels, width, out);
    }
    /* Reads on to the EOI marker: a file cut anywhere before its end is refused,
     * as PIL refuses it, even when every pixel has arrived. */
    jpeg_finish_decompress(&d->info);
    img->width = width;
    img->height = height;
    img->rgb = d->rgb;
    d->rgb = NULL;
    return 0;
}

static int decode_jpeg(const uint8_t *data, size_t size, ear_image *img, ear_error *err)
{
    jpeg_decoder d;
    memset(&d, 0, sizeof d);
    d.info.err = jpeg_std_error(&d.failure.manager);
    d.failure.manager.error_exit = jpeg_fail;
    d.failure.manager.emit_message = jpeg_note;
    int rc = jpeg_decode_into(&d, data, size, img, err);
    if (d.created)
        jpeg_destroy_decompress(&d.info);
    free(d.row);
    free(d.rgb);
    return rc;
}

/* ------------------------------------------------------------------ PNG */

typedef struct png_decoder {
    png_structp png;
    png_infop info;
    const uint8_t *data;
    size_t size, offset;
    uint8_t *pixels; /* one row, or the whole image when interlaced */
    uint8_t *rgb;
    uint8_t *raw; /* the colour with the alpha dropped, for an image with alpha */
    char message[256];
} png_decoder;

static void png_fail(png_structp png, png_const_charp message)
{
    png_decoder *d = png_get_error_ptr(png);
    snprintf(d->message, sizeof d->message, "%s", message);
    png_longjmp(png, 1);
}

static void png_warn(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message;
}

static void png_read_memory(png_structp png, png_bytep out, size_t length)
{
    png_decoder *d = png_get_io_ptr(png);
    if (length > d->size - d->offset)
        png_error(png, "truncated file");
    memcpy(out, d->data + d->offset, length);
    d->offset += length;
}

static int png_decode_into(png_decoder *d, ear_image *img, ear_error *err)
{
    if (setjmp(png_jmpbuf(d->png)))
        return ear_error_set(err, "bad PNG: %s", d->message);
    png_set_read_fn(d->png, d, png_read_memory);
    /* Our own limit below gives the clearer message. */
    png_set_user_limits(d->png, 0x7fffffff, 0x7fffffff);
    png_read_info(d->png, d->info);
    png_uint_32 width, height;
    int bit_depth, color_type;
    png_get_IHDR(d->png, d->info, &width, &height, &bit_depth, &color_type, NULL, NULL, NULL);
    if (check_dimensions("PNG", width, height, err) != 0)
        return -1;
    /* PIL keeps the high byte of 16-bit RGB, RGBA and gray+alpha samples, as
     * png_set_strip_16 does. For 16-bit gray PIL makes a 32-bit "I" image that
     * convert('RGB') clamps to 0..255, turning nearly every pixel white: here,
     * deliberately unlike PIL, 16-bit gray also keeps its high byte. */
    if (bit_depth == 16)
        png_set_strip_16(d->png);
    /* A palette's tRNS becomes alpha, as in PIL's P -> RGBA. A tRNS colour key on
     * gray or RGB is ignored, since PIL composites only RGBA, LA and P images. */
    if (color_type == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(d->png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8)
        png_set_expand_gray_1_2_4_to_8(d->png);
    int passes = png_set_interlace_handling(d->png);
    png_read_update_info(d->png, d->info);
    int channels = png_get_channels(d->png, d->info);
    size_t row_bytes = png_get_rowbytes(d->png, d->info);
    if (channels < 1 || channels > 4 || row_bytes != (size_t)width * (size_t)channels)
        return ear_error_set(err, "unsupported PNG layout (%d channels, %zu bytes a row)",
                             channels, row_bytes);
    d->rgb = malloc((size_t)width * height * 3);
    d->pixels = malloc(row_bytes * (passes > 1 ? height : 1));
    /* With alpha, also the colour with the alpha dropped (PIL's convert("RGB")). */
    if (channels == 2 || channels == 4)
        d->raw = malloc((size_t)width * height * 3);
    if (!d->rgb || !d->pixels || ((channels == 2 || channels == 4) && !d->raw))
        return ear_error_set(err, "out of memory for a %lu x %lu PNG", (unsigned long)width,
                             (unsigned long)height);
    for (int pass = 0; pass < passes; pass++) {
        for (png_uint_32 y = 0; y < height; y++) {
            /* Interlaced passes fill in the same full image row by row. */
            uint8_t *row = passes > 1 ? d->pixels + y * row_bytes : d->pixels;
            png_read_row(d->png, row, NULL);
            if (pass == passes - 1) {
                row_to_rgb(row, channels, (int)width, d->rgb + (size_t)y * width * 3);
                if (d->raw)
                    row_to_rgb_dropping_alpha(row, channels, (int)width,
                                              d->raw + (size_t)y * width * 3);
            }
        }
    }
    img->width = (int)width;
    img->height = (int)height;
    img->rgb = d->rgb;
    img->rgb_alpha_dropped = d->raw;
    d->rgb = d->raw = NULL;
    return 0;
}

static int decode_png(const uint8_t *data, size_t size, ear_image *img, ear_error *err)
{
    png_decoder d;
    memset(&d, 0, sizeof d);
    d.data = data;
    d.size = size;
    int rc = -1;
    d.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &d, png_fail, png_warn);
    if (d.png)
        d.info = png_create_info_struct(d.png);
    if (!d.png || !d.info) {
        ear_error_set(err, "out of memory starting the PNG decoder");
        goto done;
    }
    rc = png_decode_into(&d, img, err);
done:
    if (d.png)
        png_destroy_read_struct(&d.png, d.info ? &d.info : NULL, NULL);
    free(d.pixels);
    free(d.rgb);
    free(d.raw);
    return rc;
}

/* ------------------------------------------------------------------ API */

/* Names a few formats people send by mistake, for a clearer refusal. */
static const char *other_format(const uint8_t *data, size_t size)
{
    if (size >= 6 && (memcmp(data, "GIF87a", 6) == 0 || memcmp(data, "GIF89a", 6) == 0))
        return "GIF";
    if (size >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0)
        return "WebP";
    if (size >= 2 && memcmp(data, "BM", 2) == 0)
        return "BMP";
    if (size >= 4 && (memcmp(data, "II*", 4) == 0 || memcmp(data, "MM\0*", 4) == 0))
        return "TIFF";
    return NULL;
}

int ear_image_decode(const uint8_t *data, size_t size, ear_image *img, ear_error *err)
{
    if (!img)
        return ear_error_set(err, "no image to decode into");
    memset(img, 0, sizeof *img);
    if (!data || size == 0)
        return ear_error_set(err, "empty image data");
    if (size >= sizeof png_signature && memcmp(data, png_signature, sizeof png_signature) == 0)
        return decode_png(data, size, img, err);
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return decode_jpeg(data, size, img, err);
    const char *other = other_format(data, size);
    if (other)
        return ear_error_set(err, "unsupported image format %s (only JPEG and PNG)", other);
    char start[16] = "";
    for (size_t i = 0; i < size && i < 4; i++)
        snprintf(start + 3 * i, sizeof start - 3 * i, " %02x", data[i]);
    return ear_error_set(err, "not a JPEG or PNG image (%zu byte%s, starting%s)", size,
                         size == 1 ? "" : "s", start);
}

void ear_image_free(ear_image *img)
{
    if (!img)
        return;
    free(img->rgb);
    free(img->rgb_alpha_dropped);
    memset(img, 0, sizeof *img);
}
