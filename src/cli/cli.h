/* The `ear` command line: one function per command, shared helpers. */
#ifndef EAR_CLI_H
#define EAR_CLI_H

#include "audio/audio.h"
#include "core/core.h"
#include "image/image.h"

/* Exit statuses of ../shared/spec/interfaces.md. */
enum { EAR_EXIT_OK = 0, EAR_EXIT_FAILED = 1, EAR_EXIT_USAGE = 2 };

/* Each command gets argv with argv[0] the command's name. */
int ear_cli_decode(int argc, char **argv);
int ear_cli_mel(int argc, char **argv);
int ear_cli_embed(int argc, char **argv);
int ear_cli_info(int argc, char **argv);
int ear_cli_index(int argc, char **argv);
int ear_cli_search(int argc, char **argv);
int ear_cli_serve(int argc, char **argv);

/* `ear info` for a file starting with "EARINDEX": describes and verifies it. */
int ear_cli_info_index(const char *path);

/* Prints `ear: <what>: <why>` on stderr and returns EAR_EXIT_FAILED. */
int ear_cli_fail(const char *what, const char *why);

/* Prints `ear CMD: <message>` and a pointer to --help; returns EAR_EXIT_USAGE. */
int ear_cli_usage_error(const char *name, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Reads a file whole (limit: 1 GiB); on failure prints the error line. */
uint8_t *ear_cli_read_file(const char *path, size_t *size);

/* Decodes as ear_audio_decode / ear_image_decode do: in a sandboxed helper
 * process unless sandbox is 0 (--no-sandbox). */
int ear_cli_decode_audio(const uint8_t *data, size_t size, const ear_audio_decode_options *o,
                         int sandbox, ear_audio_clip *clip, ear_error *err);
int ear_cli_decode_image(const uint8_t *data, size_t size, int sandbox, ear_image *img,
                         ear_error *err);

/* Parses a positive number; returns 0 on success. */
int ear_cli_parse_double(const char *text, double min, double max, double *out);
int ear_cli_parse_int(const char *text, long min, long max, int *out);

#endif
