/* util.c — helpers shared by the `sld` subcommands: error and usage
 * reporting, strict number parsing, the stderr log sink. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_fail(const sld_error *err)
{
    fprintf(stderr, "sld: %s\n", err && err->msg[0] ? err->msg : "unknown error");
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sld %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'sld %s --help')\n", cmd);
    va_end(ap);
    return 2;
}

int cli_parse_int(const char *s, long long lo, long long hi, long long *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_u64(const char *s, unsigned long long *out)
{
    if (!s || !*s || *s == '-')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_float(const char *s, double *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* True when flag occurs in text as a whole word (bounded by start, space,
 * comma, '[', '(' or '|' before and space, comma, ']', ')', '|' or the end
 * after). */
static int has_word(const char *text, const char *flag)
{
    size_t n = strlen(flag);
    for (const char *p = strstr(text, flag); p; p = strstr(p + 1, flag)) {
        char b = p == text ? ' ' : p[-1], a = p[n];
        if (strchr(" ,[(|\n", b) && (a == 0 || strchr(" ,])|\n", a)))
            return 1;
    }
    return 0;
}

int cli_missing_value(const char *cmd, const char *flag, const char *usage, const char *extra)
{
    if (flag[0] == '-' && (has_word(usage, flag) || (extra && has_word(extra, flag))))
        return cli_usage_error(cmd, "'%s' needs a value", flag);
    if (flag[0] == '-')
        return cli_usage_error(cmd, "unknown option '%s'", flag);
    return cli_usage_error(cmd, "unexpected argument '%s'", flag);
}

static void log_to_stderr(sld_log_level level, const char *msg, void *user)
{
    int verbose = (int)(intptr_t)user;
    if (level == SLD_LOG_ERROR)
        fprintf(stderr, "sld: error: %s\n", msg);
    else if (level == SLD_LOG_WARN)
        fprintf(stderr, "sld: warning: %s\n", msg);
    else if (verbose && level == SLD_LOG_INFO)
        fprintf(stderr, "sld: %s\n", msg);
    else if (verbose > 1)
        fprintf(stderr, "sld: debug: %s\n", msg);
}

void cli_log_install(int verbose) { sld_log_set(log_to_stderr, (void *)(intptr_t)verbose); }
