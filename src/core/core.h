/* Ear's common ground: error messages, time, files, .npy output.
 * Every module reports failure the same way: the function returns a negative
 * code (or NULL) and fills an ear_error the caller can show. */
#ifndef EAR_CORE_H
#define EAR_CORE_H

#include <stddef.h>
#include <stdint.h>

#define EAR_ERROR_SIZE 512

typedef struct ear_error {
    char message[EAR_ERROR_SIZE];
} ear_error;

/* Fills err (if not NULL) with a printf-style message; always returns -1. */
int ear_error_set(ear_error *err, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Returns text (malloc'd, NUL-terminated) with every byte that is not part of
 * valid UTF-8 replaced by U+FFFD: the same pointer when nothing was, else a
 * new one (text freed). NULL when out of memory (text freed) or text is NULL. */
char *ear_utf8_clean(char *text);

/* Monotonic clock in milliseconds. */
double ear_now_ms(void);

/* Reads a whole file into a fresh malloc'd buffer (NUL-terminated, size excludes
 * the NUL); refuses files larger than max_bytes. Returns NULL with err filled. */
uint8_t *ear_file_read(const char *path, size_t max_bytes, size_t *size, ear_error *err);

/* A whole file mapped read-only (ear_file_map / ear_file_unmap). */
typedef struct ear_file_mapping {
    const uint8_t *data;
    size_t size;
} ear_file_mapping;

/* Opens path, checks it is a regular file of at least min_size bytes, and maps all of it
 * read-only into *map. Returns 0, or -1 with err filled ("PATH: why") and *map zeroed.
 * An empty file is refused. The file must not shrink while mapped (that would be SIGBUS). */
int ear_file_map(const char *path, size_t min_size, ear_file_mapping *map, ear_error *err);

/* Unmaps what ear_file_map mapped and zeroes *map; a zeroed map is fine. */
void ear_file_unmap(ear_file_mapping *map);

/* Writes data to path atomically: a temporary file in the same folder, fsync,
 * rename. On failure nothing is left behind and the old file is untouched. */
int ear_file_write_atomic(const char *path, const void *data, size_t size, ear_error *err);

/* Writes a float32 array as NumPy .npy (version 1.0, '<f4', C order), atomically. */
int ear_npy_write_f32(const char *path, const float *data, int ndim, const size_t *shape,
                      ear_error *err);

/* Reads a float32 .npy file ('<f4', C order, up to 4 dimensions). Returns a
 * malloc'd array; shape[0..*ndim) filled. */
float *ear_npy_read_f32(const char *path, int *ndim, size_t shape[4], ear_error *err);

#endif
