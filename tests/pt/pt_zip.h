/* A torch zip around a bare pickle, for the tests and the fuzzer of src/pt: entries stored
 * as torch's writer stores them (less the padding), data.pkl's CRC right, and storages
 * archive/data/0 .. 3 of 16 bytes (float32 1, 2, 3, 4), 12, 8 and 0 bytes. */
#ifndef EAR_TEST_PT_ZIP_H
#define EAR_TEST_PT_ZIP_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pt/pt_internal.h"

static inline void pt_zip_put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void pt_zip_put32(uint8_t *p, uint32_t v)
{
    pt_zip_put16(p, v & 0xFFFF);
    pt_zip_put16(p + 2, v >> 16);
}

/* A stored zip of these entries, as torch's writer lays it out (less the padding). */
static inline uint8_t *ear_test_pt_zip(const uint8_t *pickle, size_t pickle_size, size_t *size)
{
    static const uint8_t storage[16] = {0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64};
    const char *names[] = {"archive/data.pkl", "archive/data/0", "archive/data/1",
                           "archive/data/2", "archive/data/3"};
    const uint8_t *datas[] = {pickle, storage, storage, storage, storage};
    const size_t sizes[] = {pickle_size, 16, 12, 8, 0};
    enum { N = 5 };
    size_t total = 22;
    for (int i = 0; i < N; i++)
        total += 30 + 46 + 2 * strlen(names[i]) + sizes[i];
    uint8_t *zip = calloc(1, total);
    if (!zip)
        abort();
    size_t offsets[N], at = 0;
    for (int i = 0; i < N; i++) {
        size_t n = strlen(names[i]);
        offsets[i] = at;
        pt_zip_put32(zip + at, 0x04034b50);
        pt_zip_put16(zip + at + 4, 20);
        pt_zip_put32(zip + at + 14, ear_pt_crc32(datas[i], sizes[i]));
        pt_zip_put32(zip + at + 18, (uint32_t)sizes[i]);
        pt_zip_put32(zip + at + 22, (uint32_t)sizes[i]);
        pt_zip_put16(zip + at + 26, (unsigned)n);
        memcpy(zip + at + 30, names[i], n);
        if (sizes[i])
            memcpy(zip + at + 30 + n, datas[i], sizes[i]);
        at += 30 + n + sizes[i];
    }
    size_t cd = at;
    for (int i = 0; i < N; i++) {
        size_t n = strlen(names[i]);
        pt_zip_put32(zip + at, 0x02014b50);
        pt_zip_put16(zip + at + 4, 20);
        pt_zip_put16(zip + at + 6, 20);
        pt_zip_put32(zip + at + 16, ear_pt_crc32(datas[i], sizes[i]));
        pt_zip_put32(zip + at + 20, (uint32_t)sizes[i]);
        pt_zip_put32(zip + at + 24, (uint32_t)sizes[i]);
        pt_zip_put16(zip + at + 28, (unsigned)n);
        pt_zip_put32(zip + at + 42, (uint32_t)offsets[i]);
        memcpy(zip + at + 46, names[i], n);
        at += 46 + n;
    }
    pt_zip_put32(zip + at, 0x06054b50);
    pt_zip_put16(zip + at + 8, N);
    pt_zip_put16(zip + at + 10, N);
    pt_zip_put32(zip + at + 12, (uint32_t)(at - cd));
    pt_zip_put32(zip + at + 16, (uint32_t)cd);
    *size = at + 22;
    return zip;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

#endif
