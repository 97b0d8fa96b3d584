/* The zip container of torch.save (PyTorch's PyTorchStreamWriter, built on miniz): entries
 * stored, names `<folder>/...`, local extras padding each entry's data to 64 bytes, data
 * descriptors after the data, zip64 end records always. Read strictly: every offset and
 * length is checked against the file before it is followed, entries may not overlap, and the
 * central directory must account for exactly its own bytes. */
#include "pt/pt_internal.h"

#include <stdio.h>

#include <stdlib.h>
#include <string.h>

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

uint32_t ear_pt_crc32(const uint8_t *data, size_t size)
{
    /* Slicing by 8 (eight bytes a step): data.pkl of a large index is tens of MB. The tables
     * are made per call (8 KiB, ~4000 steps) so that no state is shared between threads. */
    uint32_t table[8][256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (uint32_t i = 0; i < 256; i++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFF];
    uint32_t c = 0xFFFFFFFFu;
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        uint32_t lo = c ^ rd32(data + i), hi = rd32(data + i + 4);
        c = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^
            table[4][lo >> 24] ^ table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^
            table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
    }
    for (; i < size; i++)
        c = table[0][(c ^ data[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static int compare_by_name(const void *a, const void *b)
{
    const ear_pt_entry *x = a, *y = b;
    size_t n = x->name_length < y->name_length ? x->name_length : y->name_length;
    int c = memcmp(x->name, y->name, n);
    if (c)
        return c;
    return x->name_length < y->name_length ? -1 : x->name_length > y->name_length;
}

static int compare_by_offset(const void *a, const void *b)
{
    const ear_pt_entry *const *x = a, *const *y = b;
    return (*x)->header_offset < (*y)->header_offset ? -1
                                                     : (*x)->header_offset > (*y)->header_offset;
}

ear_pt_entry *ear_pt_zip_find(ear_pt_file *f, const char *name, size_t length)
{
    ear_pt_entry key = {.name = name, .name_length = length};
    return bsearch(&key, f->entries, f->entry_count, sizeof *f->entries, compare_by_name);
}

/* A printable form of an entry name for messages (names are bytes). */
static void show_name(char *out, size_t size, const char *name, size_t length)
{
    size_t o = 0;
    for (size_t i = 0; i < length && o + 5 < size; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c >= 0x20 && c < 0x7F)
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
    }
    out[o] = 0;
}

/* The zip64 extended information of a central entry: each field that is saturated in the
 * fixed part is there, in this order. */
static int zip64_extra(const char *path, const uint8_t *extra, size_t length, uint64_t *usize,
                       uint64_t *csize, uint64_t *offset, ear_error *err)
{
    size_t i = 0;
    while (i + 4 <= length) {
        uint16_t id = rd16(extra + i), n = rd16(extra + i + 2);
        if (i + 4 + n > length)
            return ear_error_set(err, "%s: corrupt zip: an extra field runs past its entry",
                                 path);
        if (id == 0x0001) {
            const uint8_t *p = extra + i + 4;
            size_t left = n;
            uint64_t *fields[3] = {usize, csize, offset};
            for (int k = 0; k < 3; k++) {
                if (*fields[k] != 0xFFFFFFFFu)
                    continue;
                if (left < 8)
                    return ear_error_set(err, "%s: corrupt zip: zip64 extra field too short",
                                         path);
                *fields[k] = rd64(p);
                p += 8;
                left -= 8;
            }
            return 0;
        }
        i += 4 + (size_t)n;
    }
    if (i != length)
        return ear_error_set(err, "%s: corrupt zip: an extra field is cut short", path);
    if (*usize == 0xFFFFFFFFu || *csize == 0xFFFFFFFFu || *offset == 0xFFFFFFFFu)
        return ear_error_set(err, "%s: corrupt zip: saturated sizes without a zip64 field", path);
    return 0;
}

int ear_pt_zip_read(ear_pt_file *f, ear_error *err)
{
    const uint8_t *map = f->map.data;
    size_t size = f->map.size;
    const char *path = f->path;
    ear_pt_entry **by_offset = NULL;

    if (size >= 2 && map[0] == 0x80 && map[1] <= 5)
        return ear_error_set(err, "%s: the legacy torch.save format (a bare pickle, torch < 1.6 "
                                  "or _use_new_zipfile_serialization=False) is not read; "
                                  "re-save it with a newer torch", path);
    if (size < 22 || memcmp(map, "PK\3\4", 4) != 0)
        return ear_error_set(err, "%s: not a zip file, so not a torch.save file", path);

    /* The end of central directory: the last signature whose comment ends the file. */
    size_t eocd = SIZE_MAX;
    size_t lowest = size - 22 > 65535 ? size - 22 - 65535 : 0;
    for (size_t i = size - 22 + 1; i-- > lowest;) {
        if (rd32(map + i) == 0x06054b50 && i + 22 + rd16(map + i + 20) == size) {
            eocd = i;
            break;
        }
    }
    if (eocd == SIZE_MAX)
        return ear_error_set(err, "%s: no end of central directory: a truncated or corrupt zip",
                             path);
    const uint8_t *e = map + eocd;
    if (rd16(e + 4) != 0 || rd16(e + 6) != 0)
        return ear_error_set(err, "%s: a multi-disk zip is not read", path);
    uint64_t count = rd16(e + 10), cd_size = rd32(e + 12), cd_offset = rd32(e + 16);
    if (rd16(e + 8) != rd16(e + 10))
        return ear_error_set(err, "%s: corrupt zip: entry counts disagree", path);
    size_t cd_limit = eocd; /* the central directory ends before what follows it */

    if (eocd >= 20 && rd32(map + eocd - 20) == 0x07064b50) {
        const uint8_t *loc = map + eocd - 20;
        uint64_t z = rd64(loc + 8);
        if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1)
            return ear_error_set(err, "%s: a multi-disk zip is not read", path);
        if (z > eocd - 20 || eocd - 20 - z < 56 || rd32(map + z) != 0x06064b50)
            return ear_error_set(err, "%s: corrupt zip: the zip64 end record is not where its "
                                      "locator says", path);
        const uint8_t *r = map + z;
        if (rd32(r + 16) != 0 || rd32(r + 20) != 0 || rd64(r + 24) != rd64(r + 32))
            return ear_error_set(err, "%s: corrupt zip: zip64 end record (disks or counts)",
                                 path);
        uint64_t count64 = rd64(r + 32), size64 = rd64(r + 40), offset64 = rd64(r + 48);
        if ((count != 0xFFFF && count != count64) ||
            (cd_size != 0xFFFFFFFFu && cd_size != size64) ||
            (cd_offset != 0xFFFFFFFFu && cd_offset != offset64))
            return ear_error_set(err, "%s: corrupt zip: the zip64 and zip end records disagree",
                                 path);
        count = count64;
        cd_size = size64;
        cd_offset = offset64;
        cd_limit = (size_t)z;
    } else if (count == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_offset == 0xFFFFFFFFu) {
        return ear_error_set(err, "%s: corrupt zip: zip64 sizes without a zip64 end record",
                             path);
    }
    if (cd_offset > cd_limit || cd_size != cd_limit - cd_offset)
        return ear_error_set(err, "%s: corrupt zip: the central directory (%llu bytes at "
                                  "%llu) does not end where the end record begins (%zu)",
                             path, (unsigned long long)cd_size, (unsigned long long)cd_offset,
                             cd_limit);
    if (count == 0 || count > EAR_PT_MAX_ENTRIES || count > cd_size / 46)
        return ear_error_set(err, "%s: corrupt zip: %llu entries in a central directory of %llu "
                                  "bytes (at most %d entries are read)",
                             path, (unsigned long long)count, (unsigned long long)cd_size,
                             EAR_PT_MAX_ENTRIES);

    f->entries = calloc((size_t)count, sizeof *f->entries);
    by_offset = calloc((size_t)count, sizeof *by_offset);
    if (!f->entries || !by_offset) {
        ear_error_set(err, "%s: out of memory", path);
        goto fail;
    }
    f->entry_count = (size_t)count;
    size_t at = (size_t)cd_offset;
    for (size_t n = 0; n < f->entry_count; n++) {
        ear_pt_entry *entry = &f->entries[n];
        if (cd_limit - at < 46 || rd32(map + at) != 0x02014b50) {
            ear_error_set(err, "%s: corrupt zip: central directory entry %zu is damaged", path,
                          n);
            goto fail;
        }
        const uint8_t *c = map + at;
        uint16_t flags = rd16(c + 8), method = rd16(c + 10);
        size_t name_length = rd16(c + 28), extra_length = rd16(c + 30),
               comment_length = rd16(c + 32);
        uint64_t csize = rd32(c + 20), usize = rd32(c + 24), offset = rd32(c + 42);
        if (cd_limit - at - 46 < name_length + extra_length + comment_length) {
            ear_error_set(err, "%s: corrupt zip: central directory entry %zu runs past the "
                               "directory", path, n);
            goto fail;
        }
        if (rd16(c + 34) != 0 && rd16(c + 34) != 0xFFFF) {
            ear_error_set(err, "%s: a multi-disk zip is not read", path);
            goto fail;
        }
        entry->name = (const char *)c + 46;
        entry->name_length = name_length;
        if (zip64_extra(path, c + 46 + name_length, extra_length, &usize, &csize, &offset,
                        err) != 0)
            goto fail;
        at += 46 + name_length + extra_length + comment_length;
        char shown[96];
        show_name(shown, sizeof shown, entry->name, name_length);
        if (flags & 0x41) {
            ear_error_set(err, "%s: zip entry '%s' is encrypted", path, shown);
            goto fail;
        }
        entry->method = method;
        entry->crc = rd32(c + 16);
        entry->header_offset = offset;
        /* The local header: same name and method; the data follows its name and extra. */
        if (offset > cd_offset || cd_offset - offset < 30 ||
            rd32(map + offset) != 0x04034b50) {
            ear_error_set(err, "%s: corrupt zip: no local header for '%s' at %llu", path, shown,
                          (unsigned long long)offset);
            goto fail;
        }
        const uint8_t *l = map + offset;
        size_t local_name = rd16(l + 26), local_extra = rd16(l + 28);
        if (cd_offset - offset - 30 < local_name + local_extra || local_name != name_length ||
            memcmp(l + 30, entry->name, name_length) != 0 || rd16(l + 8) != method) {
            ear_error_set(err, "%s: corrupt zip: the local header of '%s' disagrees with the "
                               "central directory", path, shown);
            goto fail;
        }
        if (!(rd16(l + 6) & 0x08)) { /* no data descriptor: the local sizes must be right */
            uint32_t lc = rd32(l + 18), lu = rd32(l + 22);
            if (rd32(l + 14) != entry->crc || (lc != 0xFFFFFFFFu && lc != csize) ||
                (lu != 0xFFFFFFFFu && lu != usize)) {
                ear_error_set(err, "%s: corrupt zip: the local sizes of '%s' disagree with the "
                                   "central directory", path, shown);
                goto fail;
            }
        }
        uint64_t data = offset + 30 + local_name + local_extra;
        if (csize > cd_offset - data) {
            ear_error_set(err, "%s: corrupt zip: the data of '%s' (%llu bytes at %llu) runs "
                               "past the entries", path, shown, (unsigned long long)csize,
                          (unsigned long long)data);
            goto fail;
        }
        if (method == 0 && csize != usize) {
            ear_error_set(err, "%s: corrupt zip: stored entry '%s' has two sizes", path, shown);
            goto fail;
        }
        entry->data = map + data;
        entry->size = (size_t)csize;
        entry->end = data + csize;
        by_offset[n] = entry;
    }
    if (at != cd_limit) {
        ear_error_set(err, "%s: corrupt zip: %zu stray bytes after the central directory", path,
                      cd_limit - at);
        goto fail;
    }
    qsort(by_offset, f->entry_count, sizeof *by_offset, compare_by_offset);
    for (size_t n = 1; n < f->entry_count; n++) {
        if (by_offset[n]->header_offset < by_offset[n - 1]->end) {
            ear_error_set(err, "%s: corrupt zip: two entries overlap at %llu", path,
                          (unsigned long long)by_offset[n]->header_offset);
            goto fail;
        }
    }
    free(by_offset);
    by_offset = NULL;
    qsort(f->entries, f->entry_count, sizeof *f->entries, compare_by_name);
    for (size_t n = 1; n < f->entry_count; n++) {
        if (compare_by_name(&f->entries[n - 1], &f->entries[n]) == 0) {
            char shown[96];
            show_name(shown, sizeof shown, f->entries[n].name, f->entries[n].name_length);
            ear_error_set(err, "%s: corrupt zip: two entries named '%s'", path, shown);
            goto fail;
        }
    }

    /* The one `<folder>/data.pkl`; its folder holds everything else. */
    ear_pt_entry *pickle = NULL;
    for (size_t n = 0; n < f->entry_count; n++) {
        ear_pt_entry *entry = &f->entries[n];
        const size_t tail = sizeof "/data.pkl" - 1;
        if (entry->name_length <= tail ||
            memcmp(entry->name + entry->name_length - tail, "/data.pkl", tail) != 0 ||
            memchr(entry->name, '/', entry->name_length - tail))
            continue;
        if (pickle) {
            ear_error_set(err, "%s: two data.pkl records: not a torch.save file", path);
            goto fail;
        }
        pickle = entry;
    }
    if (!pickle) {
        ear_error_set(err, "%s: no <folder>/data.pkl record: a zip, but not a torch.save file",
                      path);
        goto fail;
    }
    f->folder_length = pickle->name_length - (sizeof "/data.pkl" - 1);
    if (f->folder_length > EAR_PT_MAX_NAME) {
        ear_error_set(err, "%s: folder name too long", path);
        goto fail;
    }
    memcpy(f->folder, pickle->name, f->folder_length);
    f->folder[f->folder_length] = 0;
    if (pickle->method != 0) {
        ear_error_set(err, "%s: data.pkl is compressed (method %u); torch.save stores it", path,
                      pickle->method);
        goto fail;
    }
    if (ear_pt_crc32(pickle->data, pickle->size) != pickle->crc) {
        ear_error_set(err, "%s: data.pkl fails its CRC: a corrupt file", path);
        goto fail;
    }
    f->pickle = pickle;

    /* Newer torch records the byte order; storages are read as little endian. */
    char name[EAR_PT_MAX_NAME + 32];
    int length = snprintf(name, sizeof name, "%s/byteorder", f->folder);
    ear_pt_entry *order = ear_pt_zip_find(f, name, (size_t)length);
    if (order && !(order->method == 0 && order->size == 6 &&
                   memcmp(order->data, "little", 6) == 0)) {
        ear_error_set(err, "%s: the storages are not little endian (byteorder record): not read",
                      path);
        goto fail;
    }
    return 0;
fail:
    free(by_offset);
    return -1;
}
