/* A ResNet tower's convolutions handed to the backend (backend.c): each one laid out once,
 * for the largest input it will see, in the weight type asked for, as the loader folds it
 * (so that no float32 copy of the whole tower is ever resident). Sessions then run the tower
 * in NHWC (session.c). */
#include "nn/network.h"

/* Records a conv's largest input and moves the shape on to its output. */
static void conv_shape(ear_nn_conv *c, int *height, int *width)
{
    c->in_height = *height;
    c->in_width = *width;
    *height = ear_nn_output_size(*height, c->kernel, c->stride, c->padding);
    *width = ear_nn_output_size(*width, c->kernel, c->stride, c->padding);
}

void ear_nn_tower_shapes(ear_nn_tower *t)
{
    ear_nn_encoder *e = &t->encoder;
    int h = t->height, w = t->width;
    conv_shape(&e->stem, &h, &w);
    h = ear_nn_output_size(h, 3, 2, 1);
    w = ear_nn_output_size(w, 3, 2, 1);
    for (int b = 0; b < e->block_count; b++) {
        ear_nn_block *block = &e->blocks[b];
        int bh = h, bw = w, dh = h, dw = w;
        for (int k = 0; k < block->conv_count; k++)
            conv_shape(&block->convs[k], &bh, &bw);
        if (block->has_downsample)
            conv_shape(&block->downsample, &dh, &dw);
        h = bh;
        w = bw;
    }
}

int ear_nn_conv_compile(ear_nn_conv *c, const float *weight, const float *bias,
                        ear_nn_weights weights, ear_error *err)
{
    c->compiled = ear_nn_conv2d_create(weight, bias, c->in_channels, c->out_channels, c->kernel,
                                       c->stride, c->padding, c->in_height, c->in_width, weights,
                                       err);
    return c->compiled ? 0 : -1;
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
