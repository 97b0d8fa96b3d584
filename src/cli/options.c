/* Options read from a table (name, kind, range, target) rather than one
 * `case` each: the range and the message that states it live in one place. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int ear_cli_parse_bytes(const char *text, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || text[0] == '-')
        return -1;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    if (shift)
        end++;
    if (*end || v == 0 || v > (1ull << 40) >> shift)
        return -1;
    *out = (size_t)(v << shift);
    return 0;
}

/* Stores text into the option's target; -1 when it is out of the option's range. */
static int store(const ear_cli_option *o, const char *text)
{
    switch (o->kind) {
    case EAR_CLI_OPT_STRING: {
        size_t length = strlen(text);
        if (length < (size_t)o->min || (o->max > 0 && length > (size_t)o->max))
            return -1;
        *(const char **)o->target = text;
        return 0;
    }
    case EAR_CLI_OPT_INT:
        return ear_cli_parse_int(text, (long)o->min, (long)o->max, (int *)o->target);
    case EAR_CLI_OPT_DOUBLE:
        return ear_cli_parse_double(text, o->min, o->max, (double *)o->target);
    case EAR_CLI_OPT_BYTES:
        return ear_cli_parse_bytes(text, (size_t *)o->target);
    case EAR_CLI_OPT_FLAG:
        *(int *)o->target = 1;
        return 0;
    }
    return -1;
}

static int out_of_range(const char *command, const ear_cli_option *o)
{
    switch (o->kind) {
    case EAR_CLI_OPT_STRING:
        return ear_cli_usage_error(command, "--%s must be %g to %g characters", o->name, o->min,
                                   o->max);
    case EAR_CLI_OPT_BYTES:
        return ear_cli_usage_error(command, "--%s must be a byte count from 1 to 1T (a K, M or "
                                            "G suffix is allowed)",
                                   o->name);
    default:
        return ear_cli_usage_error(command, "--%s must be %g to %g", o->name, o->min, o->max);
    }
}

/* The option named arg (after "--" or "-"), or NULL. */
static const ear_cli_option *find(const ear_cli_option *options, size_t count, const char *arg,
                                  size_t *name_length)
{
    if (arg[1] != '-') { /* -k VALUE or -kVALUE */
        *name_length = 1;
        for (size_t k = 0; k < count; k++)
            if (options[k].short_name && options[k].short_name == arg[1])
                return &options[k];
        return NULL;
    }
    const char *name = arg + 2, *equals = strchr(name, '=');
    *name_length = equals ? (size_t)(equals - name) : strlen(name);
    for (size_t k = 0; k < count; k++)
        if (strlen(options[k].name) == *name_length &&
            strncmp(options[k].name, name, *name_length) == 0)
            return &options[k];
    return NULL;
}

int ear_cli_parse_options(const char *command, int argc, char **argv,
                          const ear_cli_option *options, size_t count, const char *help,
                          int *first_operand)
{
    /* Operands may come before, between or after the options (as getopt_long
     * allows): they are gathered here and moved to the end of argv. */
    char **operands = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *operands);
    int n = 0, status = -1;
    if (!operands)
        return ear_cli_fail(command, "out of memory");
    for (int i = 1; i < argc && status < 0; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            while (++i < argc)
                operands[n++] = argv[i];
            break;
        }
        if (arg[0] != '-' || arg[1] == 0) {
            operands[n++] = argv[i];
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(help, stdout);
            status = EAR_EXIT_OK;
            break;
        }
        size_t name_length;
        const ear_cli_option *o = find(options, count, arg, &name_length);
        if (!o) {
            status = ear_cli_usage_error(command, "unknown option '%.*s'",
                                         (int)name_length + (arg[1] == '-' ? 2 : 1), arg);
            break;
        }
        if (o->kind == EAR_CLI_OPT_FLAG) {
            /* A switch: nothing follows it, neither "-xVALUE" nor "--name=VALUE". */
            if (arg[1] != '-' ? arg[2] != 0 : arg[2 + name_length] != 0)
                status = ear_cli_usage_error(command, "--%s takes no value", o->name);
            else
                (void)store(o, "");
            continue;
        }
        const char *value;
        if (arg[1] != '-')
            value = arg[2] ? arg + 2 : i + 1 < argc ? argv[++i] : NULL;
        else
            value = arg[2 + name_length] == '=' ? arg + 3 + name_length
                    : i + 1 < argc              ? argv[++i]
                                                : NULL;
        if (!value)
            status = ear_cli_usage_error(command, "--%s needs a value", o->name);
        else if (store(o, value) != 0)
            status = out_of_range(command, o);
    }
    if (status < 0) {
        for (int j = 0; j < n; j++)
            argv[argc - n + j] = operands[j];
        *first_operand = argc - n;
    }
    free(operands);
    return status;
}
