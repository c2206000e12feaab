/*
 * cli.h — the `sld` command's subcommands and shared helpers. Each
 * subcommand lives in its own cmd_<name>.c (helpers in util.c, dispatch in
 * main.c) and returns the process exit code:
 * 0 success, 1 error (one line on stderr naming the problem), 2 bad usage.
 * The CLI uses only the public sld.h.
 */
#ifndef SLD_CLI_H
#define SLD_CLI_H

#include "sld.h"

int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_encode(int argc, char **argv);
int cmd_debug(int argc, char **argv);
int cmd_i2p(int argc, char **argv);
int cmd_i2p_quality(int argc, char **argv);        /* cmd_i2p_quality.c */
int cmd_i2p_quality_report(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_metrics(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Prints "sld: <msg>" to stderr and returns 1. */
int cli_fail(const sld_error *err);
/* Prints "sld <cmd>: <printf>" plus a usage hint to stderr and returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last argument is a flag with no value after it: "'--x' needs a
 * value" when --x is one of the command's flags (it appears in usage or in
 * extra, a space-separated list of aliases), else "unknown option". Returns 2. */
int cli_missing_value(const char *cmd, const char *flag, const char *usage, const char *extra);
/* Strict number parsing: whole string must be a number in range. 0 on success. */
int cli_parse_int(const char *s, long long lo, long long hi, long long *out);
int cli_parse_u64(const char *s, unsigned long long *out);
int cli_parse_float(const char *s, double *out);
/* Installs a log sink printing warnings/errors (and info when verbose) to stderr. */
void cli_log_install(int verbose);

#endif /* SLD_CLI_H */
