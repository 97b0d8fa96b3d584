/* The `ear` command line: one function per command, shared helpers. */
#ifndef EAR_CLI_H
#define EAR_CLI_H

#include <stddef.h>

#include "core/core.h"

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

/* `ear info` for a torch.save zip that the model loader did not take (not_model: its reason):
 * what the .pt reader sees (top-level entries, tensor count, dtypes, bytes), or why the
 * reader refuses the file (exit 1). */
int ear_cli_info_pt(const char *path, const char *not_model);

/* Prints `ear: <what>: <why>` on stderr and returns EAR_EXIT_FAILED. */
int ear_cli_fail(const char *what, const char *why);

/* Prints `ear CMD: <message>` and a pointer to --help; returns EAR_EXIT_USAGE. */
int ear_cli_usage_error(const char *name, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Reads a file whole (limit: 1 GiB); on failure prints the error line. */
uint8_t *ear_cli_read_file(const char *path, size_t *size);

/* Parses a positive number; returns 0 on success. */
int ear_cli_parse_double(const char *text, double min, double max, double *out);
int ear_cli_parse_int(const char *text, long min, long max, int *out);

/* An option of a command, read from a table: --name VALUE or --name=VALUE. */
typedef enum {
    EAR_CLI_OPT_STRING,  /* const char *: min to max characters (max 0: no limit) */
    EAR_CLI_OPT_INT,     /* int from min to max */
    EAR_CLI_OPT_DOUBLE,  /* double from min to max */
    EAR_CLI_OPT_BYTES    /* size_t: a byte count, K, M or G allowed, 1 to 1T */
} ear_cli_option_kind;

typedef struct ear_cli_option {
    const char *name;    /* without the leading "--" */
    ear_cli_option_kind kind;
    double min, max;
    void *target;        /* where the value goes, of the kind's type */
} ear_cli_option;

/* Reads argv[1..] against the table (-h and --help print help); the operands start
 * at *first_operand. Returns -1 to go on, else the exit status to return now (help
 * shown, or a usage error said with what the option accepts). */
int ear_cli_parse_options(const char *command, int argc, char **argv,
                          const ear_cli_option *options, size_t count, const char *help,
                          int *first_operand);

/* Reads a byte count: digits with an optional K, M or G suffix (powers of 1024). */
int ear_cli_parse_bytes(const char *text, size_t *out);

/* Progress on stderr: a bar redrawn in place on a terminal, a plain line every
 * 10% or 5 s otherwise (logs, CI), each line starting with name ("ear index"). */
typedef struct ear_cli_progress {
    int terminal;
    int bar_shown;       /* a bar is on the current line */
    double last_line_ms;
    size_t next_tenth;   /* plain lines: the next 10% step to report */
    const char *name;
} ear_cli_progress;

void ear_cli_progress_init(ear_cli_progress *p, const char *name);

/* The callbacks of ear_query_build_options; user is the ear_cli_progress. */
void ear_cli_progress_show(void *user, size_t done, size_t total, double elapsed_ms);
void ear_cli_progress_problem(void *user, const char *file, const char *reason);

#endif
