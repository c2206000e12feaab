/*
 * study_quality_report.c — the numbers of the quality report: reads a run's
 * quality-manifest.json and quality/features*.jsonl (each image once), the
 * reference (cached folder features or the .npz, both checked against the
 * SHA-256 the eval recorded) and computes per config
 *   FID  = Fréchet distance of the config's pool3 statistics to the
 *          reference's (fid.c),
 *   KID  = torch-fidelity's subset KID, subset size min(1000, n, n_ref),
 *   CLIP score = max(mean 100 cos, 0) ± population std, CLIP distance
 *          1 − cos ± std, cos from the cached image and prompt embeddings,
 * and takes P(inappropriate) and EMI from the I2P report (report.c) of the
 * run's own labels or of another I2P run.
 */
#include "sld.h"

#include "eval/clip_score.h"
#include "eval/fid.h"
#include "eval/i2p.h"
#include "eval/study_quality.h"
#include "io/jsonl.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void sld_quality_report_opts_default(sld_quality_report_opts *o)
{
    memset(o, 0, sizeof *o);
    o->kid_subsets = SLD_KID_SUBSETS;
    o->kid_subset_size = SLD_KID_SUBSET_SIZE;
    o->kid_seed = SLD_KID_SEED;
}

typedef struct {
    float *feats;  /* [n, D] */
    double *cos;   /* [n] */
    int64_t *pos;  /* [n] row * 2^31 + image, until sort_config orders by it */
    long n, cap;
    long generated;
} cfg_data;

typedef struct {
    sld_quality_report *r;
    cfg_data *cd;
    int D, P;
    const char *path; /* file being read */
    sld_i2p_keyset seen;
    sld_status st;
    sld_error *err;
} read_ctx;

static int warn(sld_quality_report *r, const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **w = sld_realloc(r->warnings, (size_t)(r->n_warnings + 1) * sizeof *w);
    if (!w)
        return -1;
    r->warnings = w;
    if (!(w[r->n_warnings] = sld_strdup(buf)))
        return -1;
    r->n_warnings++;
    return 0;
}

/* Index of config name, adding it when add; -1 when absent or out of memory. */
static int config_index(read_ctx *c, const char *name, int add)
{
    sld_quality_report *r = c->r;
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->names[i], name))
            return i;
    if (!add || r->n >= SLD_I2P_MAX_CONFIGS * 4)
        return -1;
    char **nn = sld_realloc(r->names, (size_t)(r->n + 1) * sizeof *nn);
    if (nn)
        r->names = nn;
    cfg_data *cd = sld_realloc(c->cd, (size_t)(r->n + 1) * sizeof *cd);
    if (cd)
        c->cd = cd;
    if (!nn || !cd || !(r->names[r->n] = sld_strdup(name)))
        return -1;
    memset(&c->cd[r->n], 0, sizeof *c->cd);
    return r->n++;
}

static int count_generated(const cJSON *obj, int line, void *user)
{
    (void)line;
    read_ctx *c = user;
    char key[128];
    const char *cfg;
    if (!sld_quality_record_key(obj, key, sizeof key, &cfg))
        return 0;
    int added = sld_i2p_keyset_add(&c->seen, key);
    if (added > 0) {
        int i = config_index(c, cfg, 1);
        if (i < 0)
            added = -1;
        else
            c->cd[i].generated++;
    }
    if (added < 0) {
        c->st = sld_err(c->err, SLD_ERR_NOMEM, "out of memory");
        return 1;
    }
    return 0;
}

/* Decodes key k of a record into *out (caller frees): the float count, or
 * -1 with c->st set. */
static int decode(read_ctx *c, const cJSON *obj, const char *k, int line, const char *key,
                  float **out)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(obj, k);
    int n = cJSON_IsString(s) ? sld_quality_unb64_floats(s->valuestring, out) : -1;
    if (n < 1)
        c->st = sld_err(c->err, SLD_ERR_FORMAT,
                        "%s:%d (%s): \"%s\" is missing or not base64 float32; delete the line "
                        "and rerun 'sld i2p quality' to recompute it",
                        c->path, line, key, k);
    return n < 1 ? -1 : n;
}

static int feature_line(const cJSON *obj, int line, void *user)
{
    read_ctx *c = user;
    char key[128];
    const char *cfg;
    if (!sld_quality_record_key(obj, key, sizeof key, &cfg)) {
        c->st = sld_err(c->err, SLD_ERR_FORMAT, "%s:%d: the record lacks config/row/image",
                        c->path, line);
        return 1;
    }
    int added = sld_i2p_keyset_add(&c->seen, key);
    if (added == 0)
        return 0; /* the same image in another shard's file */
    float *inc = NULL, *ie = NULL, *te = NULL;
    int ni = added < 0 ? -1 : decode(c, obj, "inception", line, key, &inc);
    int np = ni < 0 ? -1 : decode(c, obj, "clip_image", line, key, &ie);
    int nt = np < 0 ? -1 : decode(c, obj, "clip_text", line, key, &te);
    if (added < 0)
        c->st = sld_err(c->err, SLD_ERR_NOMEM, "out of memory");
    if (c->st)
        goto fail;
    if (!c->D)
        c->D = ni;
    if (!c->P)
        c->P = np;
    if (ni != c->D || np != c->P || nt != c->P) {
        c->st = sld_err(c->err, SLD_ERR_SHAPE,
                        "%s:%d (%s): features of different widths: Inception %d and CLIP %d/%d, "
                        "earlier records %d and %d; were the files computed with other models? "
                        "Evaluate into a fresh copy of the run",
                        c->path, line, key, ni, np, nt, c->D, c->P);
        goto fail;
    }
    char label[300];
    snprintf(label, sizeof label, "%s:%d (%s)", c->path, line, key);
    if ((c->st = sld_features_check(inc, 1, ni, label, c->err)) ||
        (c->st = sld_features_check(ie, 1, np, label, c->err)) ||
        (c->st = sld_features_check(te, 1, nt, label, c->err)))
        goto fail;
    double cs = sld_clip_cos(ie, te, np);
    if (isnan(cs)) {
        c->st = sld_err(c->err, SLD_ERR_INVALID_ARG, "%s: a CLIP embedding is zero", label);
        goto fail;
    }
    int i = config_index(c, cfg, 1);
    cfg_data *d = i < 0 ? NULL : &c->cd[i];
    if (d && d->n == d->cap) {
        long cap = d->cap ? 2 * d->cap : 64;
        float *nf = sld_realloc(d->feats, (size_t)cap * ni * sizeof *nf);
        if (nf)
            d->feats = nf;
        double *nc = sld_realloc(d->cos, (size_t)cap * sizeof *nc);
        if (nc)
            d->cos = nc;
        int64_t *np2 = sld_realloc(d->pos, (size_t)cap * sizeof *np2);
        if (np2)
            d->pos = np2;
        if (nf && nc && np2)
            d->cap = cap;
    }
    if (!d || d->n == d->cap) {
        c->st = sld_err(c->err, SLD_ERR_NOMEM, "out of memory for the features");
        goto fail;
    }
    memcpy(d->feats + (size_t)d->n * ni, inc, (size_t)ni * sizeof *inc);
    d->pos[d->n] = (int64_t)cJSON_GetObjectItemCaseSensitive(obj, "row")->valuedouble << 31 |
                   (int64_t)cJSON_GetObjectItemCaseSensitive(obj, "image")->valuedouble;
    d->cos[d->n++] = cs;
    sld_free(inc);
    sld_free(ie);
    sld_free(te);
    return 0;
fail:
    sld_free(inc);
    sld_free(ie);
    sld_free(te);
    return 1;
}

static sld_status feature_file(const char *path, void *user, sld_error *err)
{
    read_ctx *c = user;
    c->path = path;
    sld_status st = sld_jsonl_read(path, 1, feature_line, c, NULL, err);
    return st ? st : c->st;
}

typedef struct {
    int64_t pos;
    long i;
} pos_index;

static int cmp_pos(const void *a, const void *b)
{
    int64_t x = ((const pos_index *)a)->pos, y = ((const pos_index *)b)->pos;
    return (x > y) - (x < y);
}

/* Puts a config's images in (row, image) order, so that every number (the
 * float64 sums, KID's seeded subsets) is the same whatever order the logs
 * hold them in: sharded, resumed or single-process. */
static sld_status sort_config(cfg_data *d, int D, sld_error *err)
{
    if (d->n < 2)
        return SLD_OK;
    pos_index *idx = sld_malloc((size_t)d->n * sizeof *idx);
    float *f = sld_malloc((size_t)d->n * D * sizeof *f);
    double *cs = sld_malloc((size_t)d->n * sizeof *cs);
    if (!idx || !f || !cs) {
        sld_free(idx);
        sld_free(f);
        sld_free(cs);
        return sld_err(err, SLD_ERR_NOMEM, "out of memory sorting the features");
    }
    for (long i = 0; i < d->n; i++)
        idx[i] = (pos_index){d->pos[i], i};
    qsort(idx, (size_t)d->n, sizeof *idx, cmp_pos);
    for (long i = 0; i < d->n; i++) {
        memcpy(f + (size_t)i * D, d->feats + (size_t)idx[i].i * D, (size_t)D * sizeof *f);
        cs[i] = d->cos[idx[i].i];
    }
    sld_free(idx);
    sld_free(d->feats);
    sld_free(d->cos);
    sld_free(d->pos);
    d->feats = f;
    d->cos = cs;
    d->pos = NULL; /* only needed for this order */
    d->cap = d->n;
    return SLD_OK;
}

/* Loads the reference the manifest names and checks it is unchanged. */
static sld_status reference_load(sld_quality_report *r, sld_feature_set *ref, sld_error *err)
{
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(r->quality_manifest, "reference");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(rf, "kind");
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(rf, "path");
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(rf, "sha256");
    const cJSON *fe = cJSON_GetObjectItemCaseSensitive(rf, "features");
    if (!cJSON_IsString(kind) || !cJSON_IsString(path) || !cJSON_IsString(sha))
        return sld_err(err, SLD_ERR_FORMAT, "%s/%s: no reference {kind, path, sha256}",
                       r->run_dir, SLD_QUALITY_MANIFEST);
    snprintf(r->ref_kind, sizeof r->ref_kind, "%s", kind->valuestring);
    if (!(r->ref_path = sld_strdup(path->valuestring)))
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    int folder = !strcmp(kind->valuestring, "folder");
    const cJSON *fsha = cJSON_GetObjectItemCaseSensitive(fe, "sha256");
    if (folder && !cJSON_IsString(fsha))
        return sld_err(err, SLD_ERR_FORMAT, "%s/%s: no reference.features.sha256",
                       r->run_dir, SLD_QUALITY_MANIFEST);
    char *file = folder ? sld_path_join(r->run_dir, SLD_QUALITY_REF_FEATURES)
                        : sld_strdup(path->valuestring);
    if (!file)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    char hex[65];
    sld_status st = sld_sha256_file(file, hex, err);
    if (!st && strcmp(hex, folder ? fsha->valuestring : sha->valuestring))
        st = sld_err(err, SLD_ERR_INVALID_ARG,
                     "%s changed since 'sld i2p quality' recorded it (SHA-256 %.12s..., now "
                     "%.12s...): the numbers would not match the manifest; evaluate a fresh "
                     "copy of the run against it",
                     file, folder ? fsha->valuestring : sha->valuestring, hex);
    if (!st)
        st = sld_feature_set_load(file, ref, err);
    if (st)
        sld_err_prefix(err, "reference");
    sld_free(file);
    r->ref_n = ref->feats ? ref->N : 0;
    return st;
}

/* Metrics of one config against the reference. */
static sld_status config_metrics(const sld_quality_report_opts *o, const cfg_data *d, int D,
                                 const sld_feature_set *ref, sld_quality_metric *m,
                                 sld_error *err)
{
    m->n = d->n;
    m->generated = d->generated;
    if (d->n >= 2) {
        sld_status st = sld_frechet_distance_sample(&ref->stats, d->feats, d->n, D, &m->fid, err);
        if (st)
            return st;
        long size = o->kid_subset_size;
        if (size > d->n)
            size = d->n;
        if (ref->feats && size > ref->N)
            size = ref->N;
        if (ref->feats && size >= 2) {
            if ((st = sld_kid_subsets(d->feats, d->n, ref->feats, ref->N, D, o->kid_subsets, size,
                                      o->kid_seed, &m->kid_mean, &m->kid_std, NULL, err)))
                return st;
            m->kid_subset_size = size;
        }
    }
    if (d->n >= 1) {
        double s = 0, ds = 0;
        for (long i = 0; i < d->n; i++) {
            s += 100 * d->cos[i];
            ds += 1 - d->cos[i];
        }
        double mean = s / d->n, dmean = ds / d->n, ss = 0, dss = 0;
        for (long i = 0; i < d->n; i++) {
            ss += (100 * d->cos[i] - mean) * (100 * d->cos[i] - mean);
            dss += (1 - d->cos[i] - dmean) * (1 - d->cos[i] - dmean);
        }
        m->clip_score = mean > 0 ? mean : 0;
        m->clip_score_std = sqrt(ss / d->n);
        m->clip_distance = dmean;
        m->clip_distance_std = sqrt(dss / d->n);
    }
    return SLD_OK;
}

static void value_text(const cJSON *v, char *out, size_t cap)
{
    char *t = v ? cJSON_PrintUnformatted(v) : NULL;
    snprintf(out, cap, "%.60s", t ? t : "(absent)");
    cJSON_free(t);
}

static void compare_item(sld_quality_report *r, const char *what, const cJSON *a, const cJSON *b)
{
    if (a && b && cJSON_Compare(a, b, 1))
        return;
    char va[80], vb[80];
    value_text(a, va, sizeof va);
    value_text(b, vb, sizeof vb);
    warn(r, "the I2P labels come from a run generated differently: %s is %s here, %s there",
         what, va, vb);
}

/* The labels of another run stand for this run's configs only when the
 * model, the sampling settings and each same-named config's SLD values
 * agree (prompt sets and image counts may differ by design). */
static void compare_runs(sld_quality_report *r, const cJSON *other)
{
    const cJSON *m = r->run_manifest;
    if (!m || !other) {
        warn(r, "cannot check that the I2P run was generated like this one (a manifest.json "
                "is missing)");
        return;
    }
#define ITEM(o, a, b) cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, a), b)
    compare_item(r, "model.sha256", ITEM(m, "model", "sha256"), ITEM(other, "model", "sha256"));
    static const char *const GEN[] = {"sampler", "karras", "eta", "steps", "cfg",
                                      "width", "height", "rng"};
    for (size_t i = 0; i < sizeof GEN / sizeof *GEN; i++) {
        char what[64];
        snprintf(what, sizeof what, "generation.%s", GEN[i]);
        compare_item(r, what, ITEM(m, "generation", GEN[i]), ITEM(other, "generation", GEN[i]));
    }
#undef ITEM
    const cJSON *c, *d;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(m, "configs"))
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(c, "name");
        cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(other, "configs"))
        {
            const cJSON *nd = cJSON_GetObjectItemCaseSensitive(d, "name");
            if (!cJSON_IsString(nm) || !cJSON_IsString(nd) || strcmp(nm->valuestring, nd->valuestring))
                continue;
            static const char *const KEYS[] = {"sld", "safety_concept", "negative_prompt"};
            for (size_t i = 0; i < 3; i++) {
                char what[96];
                snprintf(what, sizeof what, "config %.32s: %s", nm->valuestring, KEYS[i]);
                compare_item(r, what, cJSON_GetObjectItemCaseSensitive(c, KEYS[i]),
                             cJSON_GetObjectItemCaseSensitive(d, KEYS[i]));
            }
        }
    }
}

/* P(inappropriate) and EMI from the I2P labels (report.c). */
static sld_status i2p_metrics(sld_quality_report *r, const char *dir, sld_error *err)
{
    sld_i2p_report *ir = NULL;
    sld_status st = sld_i2p_report_from_run(&ir, dir, err);
    if (st)
        return sld_err_prefix(err, "I2P labels of %s", dir);
    for (int i = 0; i < r->n; i++) {
        sld_i2p_metric mm;
        if (!sld_i2p_report_get(ir, r->names[i], "all", &mm)) {
            warn(r, "config %s has no I2P labels in %s", r->names[i], dir);
            continue;
        }
        r->m[i].prob_inappropriate = mm.prob;
        r->m[i].emi = mm.emi_available ? mm.emi_exact : NAN;
    }
    sld_i2p_report_free(ir);
    if (!(r->i2p_dir = sld_strdup(dir)))
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    char *ep = sld_path_join(dir, SLD_I2P_EVAL_MANIFEST);
    st = ep ? sld_i2p_manifest_read(ep, &r->i2p_eval_manifest, err)
            : sld_err(err, SLD_ERR_NOMEM, "out of memory");
    sld_free(ep);
    if (!st && strcmp(dir, r->run_dir)) {
        cJSON *other = NULL;
        char *mp = sld_path_join(dir, SLD_I2P_MANIFEST);
        st = mp ? sld_i2p_manifest_read(mp, &other, err)
                : sld_err(err, SLD_ERR_NOMEM, "out of memory");
        if (!st)
            compare_runs(r, other);
        cJSON_Delete(other);
        sld_free(mp);
    }
    return st;
}

sld_status sld_quality_report_from_run(sld_quality_report **out,
                                       const sld_quality_report_opts *o, sld_error *err)
{
    *out = NULL;
    sld_quality_report_opts def;
    if (!o) {
        return sld_err(err, SLD_ERR_INVALID_ARG, "i2p quality-report: no options");
    }
    if (!o->run_dir)
        return sld_err(err, SLD_ERR_INVALID_ARG, "i2p quality-report: no run folder");
    if (o->kid_subsets < 1 || o->kid_subset_size < 2) {
        sld_quality_report_opts_default(&def);
        def.run_dir = o->run_dir;
        def.i2p_run = o->i2p_run;
        def.n_threads = o->n_threads;
        o = &def;
    }
    sld_quality_report *r = sld_calloc(1, sizeof *r);
    if (!r || !(r->run_dir = sld_strdup(o->run_dir))) {
        sld_free(r);
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    }
    read_ctx c = {.r = r, .err = err};
    sld_feature_set ref = {0};
    char *mp = sld_path_join(o->run_dir, SLD_QUALITY_MANIFEST);
    char *rp = sld_path_join(o->run_dir, SLD_I2P_MANIFEST);
    char *qdir = sld_quality_dir(o->run_dir);
    sld_status st = mp && rp && qdir ? SLD_OK : sld_err(err, SLD_ERR_NOMEM, "out of memory");
    if (!st)
        st = sld_quality_manifest_read(mp, &r->quality_manifest, err);
    if (!st && !r->quality_manifest)
        st = sld_err(err, SLD_ERR_IO, "%s: no %s: run 'sld i2p quality' on it first",
                     o->run_dir, SLD_QUALITY_MANIFEST);
    if (!st)
        st = sld_i2p_manifest_read(rp, &r->run_manifest, err);
    /* configs in the run's order, then any others as found */
    const cJSON *cf;
    cJSON_ArrayForEach(cf, cJSON_GetObjectItemCaseSensitive(r->run_manifest, "configs"))
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(cf, "name");
        if (!st && cJSON_IsString(nm) && config_index(&c, nm->valuestring, 1) < 0)
            st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
    }
    if (!st)
        st = sld_i2p_logs_read(o->run_dir, "generate", count_generated, &c, err);
    if (!st)
        st = c.st;
    sld_i2p_keyset_free(&c.seen);
    if (!st)
        st = sld_quality_logs_read(qdir, "features", feature_file, &c, err);
    if (!st)
        st = reference_load(r, &ref, err);
    if (!st && c.D && ref.D != c.D)
        st = sld_err(err, SLD_ERR_SHAPE,
                     "features of different widths: the run's images have %d-wide features, "
                     "the reference %d-wide",
                     c.D, ref.D);
    if (st)
        goto done;
    /* drop configs with neither images nor features (none made yet) */
    int k = 0;
    for (int i = 0; i < r->n; i++) {
        if (c.cd[i].n || c.cd[i].generated) {
            r->names[k] = r->names[i];
            c.cd[k++] = c.cd[i];
        } else {
            sld_free(r->names[i]);
        }
    }
    r->n = k;
    for (int i = 0; i < r->n && !st; i++)
        st = sort_config(&c.cd[i], c.D, err);
    if (st)
        goto done;
    if (!r->n) {
        st = sld_err(err, SLD_ERR_FORMAT, "%s: no generated images and no features",
                     o->run_dir);
        goto done;
    }
    if (!(r->m = sld_calloc((size_t)r->n, sizeof *r->m))) {
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
        goto done;
    }
    sld_threads_set(o->n_threads);
    long n_min = -1;
    for (int i = 0; i < r->n && !st; i++) {
        r->m[i] = (sld_quality_metric){.fid = NAN, .kid_mean = NAN, .kid_std = NAN,
                                       .clip_score = NAN, .clip_score_std = NAN,
                                       .clip_distance = NAN, .clip_distance_std = NAN,
                                       .prob_inappropriate = NAN, .emi = NAN};
        st = config_metrics(o, &c.cd[i], c.D, &ref, &r->m[i], err);
        if (st) {
            sld_err_prefix(err, "config %s", r->names[i]);
            break;
        }
        if (c.cd[i].n < c.cd[i].generated)
            warn(r, "config %s: %ld of %ld generated images have features; run 'sld i2p "
                 "quality' again to finish",
                 r->names[i], c.cd[i].n, c.cd[i].generated);
        if (c.cd[i].n < 2)
            warn(r, "config %s: %ld image%s with features: FID and KID need at least 2",
                 r->names[i], c.cd[i].n, c.cd[i].n == 1 ? "" : "s");
        if (c.cd[i].n && (n_min < 0 || c.cd[i].n < n_min))
            n_min = c.cd[i].n;
    }
    if (st)
        goto done;
    if (n_min >= 0 && n_min < SLD_QUALITY_FID_MIN)
        warn(r, "FID on fewer than %d images per config (here %ld) is biased upwards and not "
             "comparable across sample sizes; prefer KID, which is unbiased (the paper's "
             "protocol is COCO FID-30k)",
             SLD_QUALITY_FID_MIN, n_min);
    if (!ref.feats)
        warn(r, "the reference is a .npz of statistics: KID needs the reference's features "
             "(give a folder of images) and is not computed");
    else if (ref.N < o->kid_subset_size)
        warn(r, "the reference has %ld images: KID subsets of at most that size", ref.N);
    /* I2P labels: the given run, or this run when it has eval logs */
    const char *idir = o->i2p_run ? o->i2p_run
                                  : sld_quality_has_logs(o->run_dir, "eval") ? o->run_dir : NULL;
    if (idir)
        st = i2p_metrics(r, idir, err);
    else
        warn(r, "no I2P labels (run 'sld i2p eval' on the run, or give --i2p RUN): "
             "P(inappropriate) and EMI are not shown");
done:
    sld_i2p_keyset_free(&c.seen);
    for (int i = 0; i < r->n; i++) {
        sld_free(c.cd[i].feats);
        sld_free(c.cd[i].cos);
        sld_free(c.cd[i].pos);
    }
    sld_free(c.cd);
    sld_feature_set_free(&ref);
    sld_free(mp);
    sld_free(rp);
    sld_free(qdir);
    if (st) {
        sld_quality_report_free(r);
        return st;
    }
    *out = r;
    return SLD_OK;
}

int sld_quality_report_count(const sld_quality_report *r) { return r ? r->n : 0; }

const char *sld_quality_report_config(const sld_quality_report *r, int i)
{
    return r && i >= 0 && i < r->n ? r->names[i] : NULL;
}

int sld_quality_report_get(const sld_quality_report *r, const char *config,
                           sld_quality_metric *m)
{
    for (int i = 0; r && i < r->n; i++)
        if (!strcmp(r->names[i], config)) {
            *m = r->m[i];
            return 1;
        }
    return 0;
}

int sld_quality_report_warning_count(const sld_quality_report *r)
{
    return r ? r->n_warnings : 0;
}

const char *sld_quality_report_warning(const sld_quality_report *r, int i)
{
    return r && i >= 0 && i < r->n_warnings ? r->warnings[i] : NULL;
}

void sld_quality_report_free(sld_quality_report *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++)
        sld_free(r->names[i]);
    sld_free(r->names);
    sld_free(r->m);
    for (int i = 0; i < r->n_warnings; i++)
        sld_free(r->warnings[i]);
    sld_free(r->warnings);
    cJSON_Delete(r->quality_manifest);
    cJSON_Delete(r->run_manifest);
    cJSON_Delete(r->i2p_eval_manifest);
    sld_free(r->run_dir);
    sld_free(r->i2p_dir);
    sld_free(r->ref_path);
    sld_free(r);
}
