/* A ResNet tower's convolutions handed to the backend (backend.c): each one laid out once,
 * for the largest input it will see, in the weight type asked for. Sessions then run the
 * tower in NHWC (session.c). */
#include "nn/network.h"

/* Compiles one conv for a height x width input and moves the shape on to its output. */
static int compile_conv(ear_nn_conv *c, int *height, int *width, ear_nn_weights weights,
                        ear_error *err)
{
    c->compiled = ear_nn_conv2d_create(c->weight, c->bias, c->in_channels, c->out_channels,
                                       c->kernel, c->stride, c->padding, *height, *width,
                                       weights, err);
    if (!c->compiled)
        return -1;
    c->weight = c->bias = NULL; /* the backend's copy is the one; the float32 block goes */
    *height = ear_nn_output_size(*height, c->kernel, c->stride, c->padding);
    *width = ear_nn_output_size(*width, c->kernel, c->stride, c->padding);
    return 0;
}

int ear_nn_tower_compile(ear_nn_tower *t, ear_nn_weights weights, ear_error *err)
{
    ear_nn_encoder *e = &t->encoder;
    int h = t->height, w = t->width;
    t->weights = weights;
    if (compile_conv(&e->stem, &h, &w, weights, err) != 0)
        return -1;
    h = ear_nn_output_size(h, 3, 2, 1);
    w = ear_nn_output_size(w, 3, 2, 1);
    for (int b = 0; b < e->block_count; b++) {
        ear_nn_block *block = &e->blocks[b];
        int bh = h, bw = w;
        for (int k = 0; k < block->conv_count; k++)
            if (compile_conv(&block->convs[k], &bh, &bw, weights, err) != 0)
                return -1;
        if (block->has_downsample) {
            int dh = h, dw = w;
            if (compile_conv(&block->downsample, &dh, &dw, weights, err) != 0)
                return -1;
        }
        h = bh;
        w = bw;
    }
    return 0;
}

void ear_nn_tower_release(ear_nn_tower *t)
{
    ear_nn_encoder *e = &t->encoder;
    ear_nn_conv2d_free(e->stem.compiled);
    e->stem.compiled = NULL;
    for (int b = 0; e->blocks && b < e->block_count; b++) {
        ear_nn_block *block = &e->blocks[b];
        for (int k = 0; k < block->conv_count; k++) {
            ear_nn_conv2d_free(block->convs[k].compiled);
            block->convs[k].compiled = NULL;
        }
        ear_nn_conv2d_free(block->downsample.compiled);
        block->downsample.compiled = NULL;
    }
}

size_t ear_nn_tower_compiled_bytes(const ear_nn_tower *t)
{
    const ear_nn_encoder *e = &t->encoder;
    size_t bytes = e->stem.compiled ? ear_nn_conv2d_weight_bytes(e->stem.compiled) : 0;
    for (int b = 0; e->blocks && b < e->block_count; b++) {
        const ear_nn_block *block = &e->blocks[b];
        for (int k = 0; k < block->conv_count; k++)
            if (block->convs[k].compiled)
                bytes += ear_nn_conv2d_weight_bytes(block->convs[k].compiled);
        if (block->has_downsample && block->downsample.compiled)
            bytes += ear_nn_conv2d_weight_bytes(block->downsample.compiled);
    }
    return bytes;
}
