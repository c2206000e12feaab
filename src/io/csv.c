/*
 * csv.c — RFC 4180 record iterator (see csv.h).
 *
 * One pass per record: field bytes are copied (unquoted) into a growing
 * scratch buffer, each terminated by NUL, and field pointers are fixed up
 * once the record is complete (the scratch may move while it grows).
 */
#include "io/csv.h"

#include <string.h>

void sld_csv_init(sld_csv *c, const char *buf, size_t len, const char *name)
{
    memset(c, 0, sizeof *c);
    c->buf = buf;
    c->len = len;
    c->name = name ? name : "csv";
    c->cur_line = 1;
    if (len >= 3 && (uint8_t)buf[0] == 0xEF && (uint8_t)buf[1] == 0xBB &&
        (uint8_t)buf[2] == 0xBF)
        c->pos = 3;
}

void sld_csv_free(sld_csv *c)
{
    sld_free(c->scratch);
    sld_free(c->fields);
    sld_free(c->lens);
    sld_free(c->offs);
    memset(c, 0, sizeof *c);
}

static int put_byte(sld_csv *c, char ch)
{
    if (c->scratch_len == c->scratch_cap) {
        size_t cap = c->scratch_cap ? 2 * c->scratch_cap : 256;
        char *s = sld_realloc(c->scratch, cap);
        if (!s)
            return -1;
        c->scratch = s;
        c->scratch_cap = cap;
    }
    c->scratch[c->scratch_len++] = ch;
    return 0;
}

/* Starts a new field at the current scratch position. */
static int begin_field(sld_csv *c)
{
    if (c->n_fields == c->cap_fields) {
        int cap = c->cap_fields ? 2 * c->cap_fields : 16;
        size_t *o = sld_realloc(c->offs, (size_t)cap * sizeof *o);
        if (!o)
            return -1;
        c->offs = o;
        size_t *l = sld_realloc(c->lens, (size_t)cap * sizeof *l);
        if (!l)
            return -1;
        c->lens = l;
        char **f = sld_realloc(c->fields, (size_t)cap * sizeof *f);
        if (!f)
            return -1;
        c->fields = f;
        c->cap_fields = cap;
    }
    c->offs[c->n_fields++] = c->scratch_len;
    return 0;
}

static int end_field(sld_csv *c)
{
    c->lens[c->n_fields - 1] = c->scratch_len - c->offs[c->n_fields - 1];
    return put_byte(c, 0);
}

/* Consumes a record end (LF, CRLF or CR) at pos if there is one. */
static int eat_newline(sld_csv *c)
{
    if (c->pos >= c->len)
        return 0;
    if (c->buf[c->pos] == '\n') {
        c->pos++;
        c->cur_line++;
        return 1;
    }
    if (c->buf[c->pos] == '\r') {
        c->pos++;
        if (c->pos < c->len && c->buf[c->pos] == '\n')
            c->pos++;
        c->cur_line++;
        return 1;
    }
    return 0;
}

static sld_status fail(sld_csv *c, sld_error *err, sld_status code, int line, const char *what)
{
    c->pos = c->len;
    c->n_fields = 0;
    return sld_err(err, code, "%s: line %d: %s", c->name, line, what);
}

sld_status sld_csv_next(sld_csv *c, int *more, sld_error *err)
{
    *more = 0;
    c->n_fields = 0;
    c->scratch_len = 0;
    while (eat_newline(c)) /* blank lines between records */
        ;
    if (c->pos >= c->len)
        return SLD_OK;
    c->line = c->cur_line;
    for (;;) { /* one field per iteration */
        int field_line = c->cur_line;
        if (begin_field(c))
            return fail(c, err, SLD_ERR_NOMEM, field_line, "out of memory");
        if (c->pos < c->len && c->buf[c->pos] == '"') {
            c->pos++;
            for (;;) {
                if (c->pos >= c->len)
                    return fail(c, err, SLD_ERR_FORMAT, field_line,
                                "quoted field is not closed before the end of the file");
                char ch = c->buf[c->pos++];
                if (ch == '"') {
                    if (c->pos < c->len && c->buf[c->pos] == '"') {
                        c->pos++;
                    } else {
                        break;
                    }
                } else if (ch == 0) {
                    return fail(c, err, SLD_ERR_FORMAT, c->cur_line, "NUL byte in a field");
                } else if (ch == '\n' || (ch == '\r' && !(c->pos < c->len &&
                                                         c->buf[c->pos] == '\n'))) {
                    c->cur_line++;
                }
                if (put_byte(c, ch))
                    return fail(c, err, SLD_ERR_NOMEM, field_line, "out of memory");
            }
            if (c->pos < c->len && c->buf[c->pos] != ',' && c->buf[c->pos] != '\n' &&
                c->buf[c->pos] != '\r')
                return fail(c, err, SLD_ERR_FORMAT, c->cur_line,
                            "unexpected text after a closing quote (quotes inside a quoted "
                            "field must be doubled)");
        } else {
            while (c->pos < c->len) {
                char ch = c->buf[c->pos];
                if (ch == ',' || ch == '\n' || ch == '\r')
                    break;
                if (ch == '"')
                    return fail(c, err, SLD_ERR_FORMAT, c->cur_line,
                                "quote inside an unquoted field (quote the whole field and "
                                "double the quote)");
                if (ch == 0)
                    return fail(c, err, SLD_ERR_FORMAT, c->cur_line, "NUL byte in a field");
                if (put_byte(c, ch))
                    return fail(c, err, SLD_ERR_NOMEM, field_line, "out of memory");
                c->pos++;
            }
        }
        if (end_field(c))
            return fail(c, err, SLD_ERR_NOMEM, field_line, "out of memory");
        if (c->pos < c->len && c->buf[c->pos] == ',') {
            c->pos++;
            continue;
        }
        eat_newline(c);
        break;
    }
    for (int i = 0; i < c->n_fields; i++)
        c->fields[i] = c->scratch + c->offs[i];
    *more = 1;
    return SLD_OK;
}
