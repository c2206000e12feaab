/*
 * jsonl.h — crash-safe JSON Lines logs: one JSON object per line.
 *
 * Appends are one write() of "<object>\n" followed by fsync, so after a
 * crash or kill the file holds whole records plus at most one torn final
 * line (no trailing newline). Readers ignore such a final line; opening for
 * append truncates it away first, so the record is simply written again.
 * A writer holds an exclusive flock on the file: a second process appending
 * to the same log is refused instead of interleaving lines.
 */
#ifndef SLD_IO_JSONL_H
#define SLD_IO_JSONL_H

#include "core/core.h"
#include <cjson/cJSON.h>

typedef struct sld_jsonl sld_jsonl;

/* Opens (creating if needed) path for appending; drops a torn final line
 * (logged as a warning). Errors: SLD_ERR_IO (cannot open, locked by another
 * process), SLD_ERR_NOMEM. Close with sld_jsonl_close. */
sld_status sld_jsonl_open(sld_jsonl **out, const char *path, sld_error *err);
/* Appends obj as one line and fsyncs. Errors: SLD_ERR_IO (e.g. disk full;
 * a partially written line is truncated away again), SLD_ERR_NOMEM. */
sld_status sld_jsonl_append(sld_jsonl *j, const cJSON *obj, sld_error *err);
void sld_jsonl_close(sld_jsonl *j); /* NULL is a no-op */

/* Called for each complete record (line is 1-based); return nonzero to stop. */
typedef int (*sld_jsonl_fn)(const cJSON *obj, int line, void *user);

/* Reads every complete line of path. A missing file is an empty log when
 * missing_ok, else SLD_ERR_IO. A torn final line is skipped (*n_torn = 1,
 * may be NULL); a complete line that is not a JSON object is SLD_ERR_FORMAT
 * naming the line. Blank lines are skipped. */
sld_status sld_jsonl_read(const char *path, int missing_ok, sld_jsonl_fn fn, void *user,
                          int *n_torn, sld_error *err);

#endif /* SLD_IO_JSONL_H */
