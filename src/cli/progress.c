/* Progress of a long job (an index being built) on stderr. */
#include <stdio.h>
#include <unistd.h>

#include "cli/cli.h"

void ear_cli_progress_init(ear_cli_progress *p, const char *name)
{
    *p = (ear_cli_progress){.terminal = isatty(STDERR_FILENO), .next_tenth = 1, .name = name};
}

/* Progress on stderr: a bar redrawn in place on a terminal, a plain line every
 * 10% or 5 s otherwise (logs, CI). */

static void format_duration(double seconds, char *out, size_t size)
{
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(out, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(out, size, "%ld:%02ld", s / 60, s % 60);
}

void ear_cli_progress_show(void *user, size_t done, size_t total, double elapsed_ms)
{
    ear_cli_progress *p = user;
    double rate = elapsed_ms > 0 ? (double)done / (elapsed_ms / 1000.0) : 0;
    char left[32] = "?";
    if (rate > 0)
        format_duration((double)(total - done) / rate, left, sizeof left);
    if (p->terminal) {
        enum { WIDTH = 30 };
        char bar[WIDTH + 1];
        size_t filled = total ? done * WIDTH / total : WIDTH;
        for (size_t i = 0; i < WIDTH; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[WIDTH] = 0;
        fprintf(stderr, "\r\033[K[%s] %zu/%zu items  %.1f items/s  %s left", bar, done, total,
                rate, left);
        p->bar_shown = 1;
        if (done == total) {
            fputc('\n', stderr);
            p->bar_shown = 0;
        }
        fflush(stderr);
        return;
    }
    size_t tenth = total ? done * 10 / total : 10;
    if (tenth < p->next_tenth && elapsed_ms - p->last_line_ms < 5000 && done != total)
        return;
    if (done == total && p->next_tenth > 10)
        return; /* the 100% line is out already */
    fprintf(stderr, "%s: %zu/%zu items (%zu%%), %.1f items/s, %s left\n", p->name, done, total,
            total ? done * 100 / total : 100, rate, left);
    p->last_line_ms = elapsed_ms;
    p->next_tenth = tenth + 1;
}

void ear_cli_progress_problem(void *user, const char *file, const char *reason)
{
    ear_cli_progress *p = user;
    if (p->bar_shown) {
        fputs("\r\033[K", stderr);
        p->bar_shown = 0;
    }
    fprintf(stderr, "%s: skipped %s: %s\n", p->name, file, reason);
}

