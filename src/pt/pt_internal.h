/* What zip.c and pickle.c share inside src/pt (not part of the public header). */
#ifndef EAR_PT_INTERNAL_H
#define EAR_PT_INTERNAL_H

#include <stdio.h>

#include "pt/pt.h"

/* Bounds on what a file may make the reader hold. A state_dict of a large model has a few
 * thousand values; the original's index one dict of three strings per item. */
#define EAR_PT_MAX_ENTRIES (1 << 20)     /* zip entries */
#define EAR_PT_MAX_NAME 255              /* the folder of data.pkl */
#define EAR_PT_MAX_VALUES (1 << 24)      /* values the pickle may create */
#define EAR_PT_MAX_STACK (1 << 20)       /* pickle stack entries */
#define EAR_PT_MAX_MARKS 4096            /* open MARKs */
#define EAR_PT_MAX_MEMO (1 << 24)        /* memo entries */
#define EAR_PT_MAX_ARENA ((size_t)2 << 30) /* bytes of values, strings and item arrays */

typedef struct ear_pt_storage ear_pt_storage;

typedef struct ear_pt_entry {
    const char *name; /* in the map, not NUL-terminated */
    size_t name_length;
    const uint8_t *data; /* in the map */
    size_t size;
    uint64_t header_offset, end; /* the local header .. the data's end, for overlaps */
    uint32_t crc;
    uint16_t method;
    ear_pt_storage *storage; /* set when a persistent id names this record */
} ear_pt_entry;

typedef struct ear_pt_arena_chunk ear_pt_arena_chunk;

struct ear_pt_file {
    char path[256];
    ear_file_mapping map;
    int owns_map;
    ear_pt_entry *entries; /* sorted by name */
    size_t entry_count;
    char folder[EAR_PT_MAX_NAME + 1];
    size_t folder_length;
    const ear_pt_entry *pickle;
    ear_pt_arena_chunk *chunks;
    size_t arena_bytes, value_count;
    ear_pt_value *root;
    const char **names; /* the state dict's tensors, file order */
    const ear_pt_tensor **tensors;
    size_t *sorted; /* indices into names, by name */
    size_t tensor_count;
};

uint32_t ear_pt_crc32(const uint8_t *data, size_t size);
/* Fills entries, pickle and folder; checks the container. */
int ear_pt_zip_read(ear_pt_file *f, ear_error *err);
/* The entry with this exact name, or NULL. */
ear_pt_entry *ear_pt_zip_find(ear_pt_file *f, const char *name, size_t length);
/* Frees the values the pickle made. */
void ear_pt_arena_free(ear_pt_file *f);
/* Runs data.pkl; sets root. */
int ear_pt_unpickle(ear_pt_file *f, ear_error *err);

#endif
