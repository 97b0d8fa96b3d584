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

int ear_cli_parse_options(const char *command, int argc, char **argv,
                          const ear_cli_option *options, size_t count, const char *help,
                          int *first_operand)
{
    int i = 1;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (arg[0] != '-' || arg[1] == 0)
            break;
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(help, stdout);
            return EAR_EXIT_OK;
        }
        if (strncmp(arg, "--", 2) != 0)
            return ear_cli_usage_error(command, "unknown option '%s'", arg);
        const char *name = arg + 2, *equals = strchr(name, '=');
        size_t name_length = equals ? (size_t)(equals - name) : strlen(name);
        const ear_cli_option *o = NULL;
        for (size_t k = 0; k < count && !o; k++)
            if (strlen(options[k].name) == name_length &&
                strncmp(options[k].name, name, name_length) == 0)
                o = &options[k];
        if (!o)
            return ear_cli_usage_error(command, "unknown option '%.*s'", (int)name_length + 2,
                                       arg);
        const char *value = equals ? equals + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!value)
            return ear_cli_usage_error(command, "--%s needs a value", o->name);
        if (store(o, value) != 0)
            return out_of_range(command, o);
    }
    *first_operand = i;
    return -1;
}
