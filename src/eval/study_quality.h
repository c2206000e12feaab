/*
 * study_quality.h — internals of the quality side of a study run
 * (study_quality.c: eval and cache; study_quality_report.c: numbers;
 * study_quality_render.c: Markdown, JSON, HTML). Public API: sld.h, "The
 * quality side of a study run".
 */
#ifndef SLD_EVAL_STUDY_QUALITY_H
#define SLD_EVAL_STUDY_QUALITY_H

#include "core/core.h"
#include <cjson/cJSON.h>

#define SLD_QUALITY_FORMAT "sld-quality/1"
#define SLD_QUALITY_MANIFEST "quality-manifest.json"
#define SLD_QUALITY_DIR "quality"
#define SLD_QUALITY_REF_FEATURES "quality/reference-features.safetensors"
/* Below this many images per config FID is reported with a warning. */
#define SLD_QUALITY_FID_MIN 2000

/* n floats as base64 of their little-endian bytes (caller sld_frees; NULL
 * when out of memory). */
char *sld_quality_b64_floats(const float *x, int n);
/* Decodes such a string: returns the float count and *out (caller
 * sld_frees), or -1 when s is not base64 of whole float32 values. */
int sld_quality_unb64_floats(const char *s, float **out);

/* RUN_DIR/quality (caller frees). */
char *sld_quality_dir(const char *run_dir);
/* Calls fn on every dir/<prefix>[-...].jsonl in name order (a missing
 * folder has none). */
typedef sld_status (*sld_quality_log_fn)(const char *path, void *user, sld_error *err);
sld_status sld_quality_logs_read(const char *dir, const char *prefix, sld_quality_log_fn fn,
                                 void *user, sld_error *err);
int sld_quality_has_logs(const char *dir, const char *prefix);
/* "<config>/<row>/<image>" of a record; 0 when it lacks them. */
int sld_quality_record_key(const cJSON *obj, char *key, size_t cap, const char **config);
/* Reads quality-manifest.json with sld_file_read + cJSON: *out NULL when
 * absent; SLD_ERR_FORMAT when not JSON or not format sld-quality/1. */
sld_status sld_quality_manifest_read(const char *path, cJSON **out, sld_error *err);

/* The report (built in study_quality_report.c, rendered in
 * study_quality_render.c). */
struct sld_quality_report {
    char *run_dir;
    char *i2p_dir;          /* where the I2P labels came from, NULL = none */
    cJSON *quality_manifest;
    cJSON *run_manifest;    /* manifest.json, NULL when absent */
    cJSON *i2p_eval_manifest; /* eval-manifest.json of i2p_dir, NULL when absent */
    char ref_kind[8];       /* "folder" or "npz" */
    char *ref_path;
    long ref_n;             /* reference images (0 for .npz) */
    int n;                  /* configs */
    char **names;
    sld_quality_metric *m;
    char **warnings;
    int n_warnings;
};

#endif /* SLD_EVAL_STUDY_QUALITY_H */
