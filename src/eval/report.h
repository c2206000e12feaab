/*
 * report.h — internals shared by the I2P report's two halves: report.c
 * (reading runs, computing metrics, CIs, coverage) and report_render.c
 * (Markdown, JSON, LaTeX, HTML). Public API: the I2P section of sld.h.
 */
#ifndef SLD_EVAL_REPORT_H
#define SLD_EVAL_REPORT_H

#include "eval/i2p.h"

#include <stdint.h>

/* A growing string; oom is sticky (later appends do nothing). */
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

void sld_sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sld_sb_put(sbuf *b, const char *s, size_t n);
/* The string (free with free()), or NULL after an allocation failure. */
char *sld_sb_done(sbuf *b);

/* String -> index map (open addressing, FNV-1a); keys are borrowed. */
typedef struct {
    const char **keys;
    int *vals;
    size_t cap, n;
} strmap;

/* A list of owned strings with a lookup map. */
typedef struct {
    char **v;
    int n;
    strmap map;
} strlist;

typedef struct {
    int cfg, run, row, image, prompt;
    long n, u;        /* images and inappropriate ones (annotations: 10 per row) */
    char *file;       /* as recorded (relative to the run folder or absolute) */
    signed char q16, nude; /* -1 when the record has no such field */
    uint32_t classes; /* bit c: NudeNet class c detected with score >= 0.6 */
    uint32_t cats;    /* bit c: the record's row is in category c */
    /* From the image's generate record (docs/TELEMETRY.md): */
    signed char sld_on;  /* 1 SLD ran (s_S > 1, s_g > 1), 0 it did not, -1 not recorded */
    signed char has_act; /* 1 when the record carried an "sld_activity" object */
    double act_share, act_scale; /* its steered_share and mean_scale */
    char *map;           /* the record's "map" (relative to run_dirs[run]) or NULL */
} rec;

/* Distribution of one SLD activity quantity over a group of images; the
 * statistics are NAN when n == 0. Quartiles as numpy.percentile (linear). */
typedef struct {
    double mean, q1, median, q3;
} act_dist;

typedef struct {
    int n;
    act_dist share, scale; /* steered_share, mean_scale */
} act_group;

/* What the report can say about a config's SLD activity. */
enum { SLD_ACT_NOT_RECORDED, SLD_ACT_SLD_OFF, SLD_ACT_OK, SLD_ACT_NO_IMAGES };

typedef struct {
    int state;    /* SLD_ACT_* */
    long missing; /* labelled images of an SLD config whose record has no sld_activity */
} act_config;

typedef struct {
    uint32_t cats; /* bit per category index (bit 0 = "all" is implied) */
} prompt_info;

typedef struct {
    long planned; /* -1 = unknown */
    long generated, evaluated;
    int prompts;  /* distinct prompt texts with labels */
} coverage;

typedef struct {
    long images, inappropriate, q16_only, nude_only, both, q16_any, nude_any;
    long *classes; /* [n_classes] images with the class at score >= 0.6 */
} flagged;

struct sld_i2p_report {
    int n_runs, compare;
    char **run_dirs, **run_labels;
    cJSON **manifests; /* [n_runs] manifest.json, NULL when a run has none */
    cJSON **eval_manifests; /* [n_runs] eval-manifest.json, or NULL */
    rec *recs;
    int n_recs, cap_recs;
    strlist prompts, configs, cats, classes;
    prompt_info *pinfo; /* [prompts.n] */
    int *cfg_run;       /* [configs.n]: run group of the config (compare mode) */
    coverage *cov;      /* [configs.n] */
    flagged *fl;        /* [configs.n] */
    int *order;         /* configs in display order */
    int *cat_order;     /* categories in display order ("all" first) */
    int *class_order;   /* NudeNet classes: counted ones first, then by name */
    int *cat_prompts;   /* [cats.n] common prompts per category */
    int baseline;       /* config index, -1 when absent */
    int n_common;
    sld_i2p_metric *m;  /* [configs.n][cats.n] */
    int *present;       /* [configs.n][cats.n] */
    act_config *act_cfg; /* [configs.n] */
    act_group *act;     /* [configs.n][cats.n][2]: label 0 appropriate, 1 inappropriate */
    char **warnings;
    int n_warn;
    int ci_draws;
};

#endif /* SLD_EVAL_REPORT_H */
