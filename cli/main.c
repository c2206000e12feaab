/* main.c — the `sld` command: dispatches to subcommands. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *USAGE =
    "usage: sld <command> [options]\n"
    "commands:\n"
    "  generate   text to image with Safe Latent Diffusion (--help for options)\n"
    "  tokenize   print CLIP token ids of a prompt as JSON\n"
    "  encode     write a prompt's text embedding (last_hidden_state)\n"
    "  debug      run one network on tensors, or make a random full-size model\n"
    "  i2p        I2P test bed: generate, eval, report\n";

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

int main(int argc, char **argv)
{
    cli_log_install(getenv("SLD_VERBOSE") ? atoi(getenv("SLD_VERBOSE")) : 0);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *c = argv[1];
    if (!strcmp(c, "generate"))
        return cmd_generate(argc - 1, argv + 1);
    if (!strcmp(c, "tokenize"))
        return cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(c, "encode"))
        return cmd_encode(argc - 1, argv + 1);
    if (!strcmp(c, "debug"))
        return cmd_debug(argc - 1, argv + 1);
    if (!strcmp(c, "i2p"))
        return cmd_i2p(argc - 1, argv + 1);
    fprintf(stderr, "sld: unknown command '%s'\n%s", c, USAGE);
    return 2;
}
