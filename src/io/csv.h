/*
 * csv.h — an RFC 4180 record iterator over a buffer in memory.
 *
 * Accepts what spreadsheet and pandas exports contain: quoted fields with
 * embedded commas, doubled quotes ("") and line breaks; LF, CRLF or lone CR
 * record ends; a UTF-8 byte-order mark at the start; no newline after the
 * last record. Empty lines between records are skipped. Rejected, with the
 * 1-based line number where the offending field starts: a quote inside an
 * unquoted field, text after a closing quote, an unterminated quoted field,
 * and NUL bytes.
 *
 *     sld_csv c;
 *     sld_csv_init(&c, buf, len, "prompts.csv");
 *     int more;
 *     while (sld_csv_next(&c, &more, &err) == SLD_OK && more)
 *         for (int i = 0; i < c.n_fields; i++) use(c.fields[i], c.lens[i]);
 *     sld_csv_free(&c);
 *
 * Field strings are NUL-terminated and stay valid until the next call to
 * sld_csv_next or sld_csv_free. The buffer must outlive the iterator.
 */
#ifndef SLD_IO_CSV_H
#define SLD_IO_CSV_H

#include "core/core.h"

typedef struct {
    /* current record (read-only for callers) */
    char **fields;     /* [n_fields] NUL-terminated, unquoted */
    size_t *lens;      /* [n_fields] byte lengths (fields may hold no NUL) */
    int n_fields;
    int line;          /* line where the current record starts (1-based) */
    /* private */
    const char *buf;
    size_t len, pos;
    int cur_line;      /* line of buf[pos] */
    const char *name;  /* for messages */
    char *scratch;
    size_t scratch_len, scratch_cap;
    size_t *offs;      /* field start offsets in scratch */
    int cap_fields;
} sld_csv;

/* name labels error messages ("prompts.csv: line 7: ..."); it is not copied. */
void sld_csv_init(sld_csv *c, const char *buf, size_t len, const char *name);
/* Parses the next record. *more = 1 with the record in c->fields, or 0 at
 * the end of the buffer. Errors: SLD_ERR_FORMAT (with the line number),
 * SLD_ERR_NOMEM. After an error the iterator stays at the end. */
sld_status sld_csv_next(sld_csv *c, int *more, sld_error *err);
void sld_csv_free(sld_csv *c);

#endif /* SLD_IO_CSV_H */
