/*
 * cmd_tokenize.c — `sld tokenize`: the CLIP token ids the pipelines feed the
 * text encoder, as JSON lists of 77 ids on stdout.
 *
 *   sld tokenize --model PATH TEXT          one list
 *   sld tokenize --model PATH --file FILE   one list per line of FILE ("-" = stdin)
 *
 * Lines: "\n" or "\r\n" ends a line; an empty line is the empty prompt; a
 * final line without a newline counts; a trailing final newline does not
 * start another line. Exactly one output line per input line, in order.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *TOKENIZE_USAGE =
    "usage: sld tokenize --model PATH (TEXT | --file FILE)\n"
    "Prints the 77 CLIP token ids of a prompt (BOS, up to 75 tokens, EOS, padding)\n"
    "as a JSON list, exactly as diffusers' pipelines feed the text encoder.\n"
    "  --model PATH   diffusers folder or single-file .safetensors checkpoint\n"
    "  --file FILE    one UTF-8 prompt per line (\"-\" reads stdin); one JSON list\n"
    "                 per line on stdout\n"
    "  -h, --help     this help\n"
    "A prompt longer than 75 tokens is truncated (with a warning on stderr).\n";

/* Prints ids as one JSON list line. */
static void print_ids(const int32_t ids[SLD_N_CTX])
{
    char buf[SLD_N_CTX * 8 + 4];
    size_t n = 0;
    buf[n++] = '[';
    for (int i = 0; i < SLD_N_CTX; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, i ? ", %d" : "%d", (int)ids[i]);
    buf[n++] = ']';
    buf[n++] = '\n';
    fwrite(buf, 1, n, stdout);
}

/* Reads all of f into a malloc'd buffer (NUL-terminated); NULL on error. */
static char *read_stream(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap);
    if (!p)
        return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            char *q = realloc(p, cap * 2);
            if (!q) {
                free(p);
                return NULL;
            }
            p = q;
            cap *= 2;
        }
        size_t got = fread(p + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(p);
        return NULL;
    }
    p[n] = 0;
    *len = n;
    return p;
}

static int tokenize_file(const sld_model *m, const char *path)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "sld: %s: cannot open: %s\n", path, strerror(errno));
        return 1;
    }
    size_t len = 0;
    char *text = read_stream(f, &len);
    int read_errno = errno;
    if (f != stdin)
        fclose(f);
    if (!text) {
        fprintf(stderr, "sld: %s: cannot read: %s\n", path, strerror(read_errno));
        return 1;
    }
    int rc = 0;
    size_t line_no = 0;
    for (size_t i = 0; i < len;) {
        char *line = text + i;
        char *nl = memchr(line, '\n', len - i);
        size_t n = nl ? (size_t)(nl - line) : len - i;
        i += n + (nl ? 1 : 0);
        line_no++;
        if (nl && n > 0 && line[n - 1] == '\r')
            n--;
        /* NUL bytes are dropped by the tokenizer's cleaning anyway (U+0000);
         * removing them here lets the line pass as a C string */
        size_t w = 0;
        for (size_t r = 0; r < n; r++)
            if (line[r])
                line[w++] = line[r];
        line[w] = 0;
        int32_t ids[SLD_N_CTX];
        sld_error err;
        if (sld_tokenize(m, line, ids, NULL, &err) != SLD_OK) {
            fprintf(stderr, "sld: %s:%zu: %s\n", path, line_no, err.msg);
            rc = 1;
            break;
        }
        print_ids(ids);
    }
    free(text);
    return rc;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *file = NULL, *text = NULL;
    int opts_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            fputs(TOKENIZE_USAGE, stdout);
            return 0;
        } else if (!opts_done && !strcmp(a, "--")) {
            opts_done = 1;
        } else if (!opts_done && (!strcmp(a, "--model") || !strcmp(a, "--file"))) {
            if (i + 1 >= argc)
                return cli_usage_error("tokenize", "%s needs a value", a);
            if (!strcmp(a, "--model"))
                model = argv[++i];
            else
                file = argv[++i];
        } else if (!opts_done && a[0] == '-' && a[1]) {
            return cli_usage_error("tokenize", "unknown option '%s'", a);
        } else if (!text) {
            text = a;
        } else {
            return cli_usage_error("tokenize", "more than one TEXT (quote the prompt)");
        }
    }
    if (!model)
        return cli_usage_error("tokenize", "--model PATH is required");
    if (!text == !file)
        return cli_usage_error("tokenize", "give either TEXT or --file FILE");

    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);

    sld_error err;
    sld_model *m = NULL;
    if (sld_model_open(&m, model, NULL, &err) != SLD_OK)
        return cli_fail(&err);
    int rc = 0;
    if (file) {
        rc = tokenize_file(m, file);
    } else {
        int32_t ids[SLD_N_CTX];
        if (sld_tokenize(m, text, ids, NULL, &err) != SLD_OK)
            rc = cli_fail(&err);
        else
            print_ids(ids);
    }
    sld_model_close(m);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "sld: cannot write to stdout: %s\n", strerror(errno));
        rc = 1;
    }
    return rc;
}
