/*
 * study_quality.c — the quality side of a study run folder (sld.h, "The
 * quality side of a study run"): sld_quality_eval caches, per generated
 * image, the pool3 Inception features and the CLIP image and prompt
 * embeddings; sld_quality_report turns the cache into FID, KID and CLIP
 * score per config, next to I2P's P(inappropriate) and EMI from report.c.
 * Rendering lives in study_quality_render.c.
 *
 * Invariants:
 *   - the cache is append-only JSONL (io/jsonl.h: one fsync'd line per
 *     image, a torn last line dropped), one file per shard, so a killed
 *     eval loses at most the image in flight and shards never share a file;
 *     an image is identified by (config, row, image) as in the I2P logs and
 *     counts once however many files hold it;
 *   - quality-manifest.json is written once, before the first record; a
 *     later eval must match it (Inception, CLIP and reference by SHA-256),
 *     else nothing is written;
 *   - the report never trusts the cache blindly: widths must agree, values
 *     must be finite, the reference must still hash as recorded.
 */
#include "sld.h"

#include "eval/clip_score.h"
#include "eval/fid.h"
#include "eval/i2p.h"
#include "eval/study_quality.h"
#include "io/jsonl.h"
#include "io/png.h"
#include "model/inception.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define BATCH 8

/* ---- base64 of little-endian float32 -------------------------------------- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *sld_quality_b64_floats(const float *x, int n)
{
    size_t nb = (size_t)n * 4, no = (nb + 2) / 3 * 4;
    uint8_t *b = sld_malloc(nb ? nb : 1);
    char *o = sld_malloc(no + 1);
    if (!b || !o) {
        sld_free(b);
        sld_free(o);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        for (int k = 0; k < 4; k++)
            b[4 * i + k] = (uint8_t)(u >> (8 * k));
    }
    size_t j = 0;
    for (size_t i = 0; i < nb; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16;
        if (i + 1 < nb)
            v |= (uint32_t)b[i + 1] << 8;
        if (i + 2 < nb)
            v |= b[i + 2];
        o[j++] = B64[(v >> 18) & 63];
        o[j++] = B64[(v >> 12) & 63];
        o[j++] = i + 1 < nb ? B64[(v >> 6) & 63] : '=';
        o[j++] = i + 2 < nb ? B64[v & 63] : '=';
    }
    o[j] = 0;
    sld_free(b);
    return o;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int sld_quality_unb64_floats(const char *s, float **out)
{
    *out = NULL;
    size_t len = strlen(s);
    if (len % 4 || len == 0 || len > ((size_t)1 << 28))
        return -1;
    size_t pad = (s[len - 1] == '=') + (s[len - 2] == '=');
    size_t nb = len / 4 * 3 - pad;
    if (nb % 4)
        return -1;
    uint8_t *b = sld_malloc(nb);
    float *f = sld_malloc(nb);
    if (!b || !f) {
        sld_free(b);
        sld_free(f);
        return -1;
    }
    size_t j = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            v[k] = s[i + k] == '=' && i + 4 == len && k >= 2 ? 0 : b64_val(s[i + k]);
            if (v[k] < 0)
                goto bad;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        uint8_t t[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
        for (int k = 0; k < 3 && j < nb; k++)
            b[j++] = t[k];
    }
    for (size_t i = 0; i < nb / 4; i++) {
        uint32_t u = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
                     (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24;
        memcpy(&f[i], &u, 4);
    }
    sld_free(b);
    *out = f;
    return (int)(nb / 4);
bad:
    sld_free(b);
    sld_free(f);
    return -1;
}

/* ---- files of the run folder ------------------------------------------------ */

char *sld_quality_dir(const char *run_dir) { return sld_path_join(run_dir, SLD_QUALITY_DIR); }

static int is_log(const char *nm, const char *prefix)
{
    size_t pl = strlen(prefix), l = strlen(nm);
    return nm[0] != '.' && l >= pl + 6 && !strncmp(nm, prefix, pl) &&
           (nm[pl] == '.' || nm[pl] == '-') && !strcmp(nm + l - 6, ".jsonl");
}

sld_status sld_quality_logs_read(const char *dir, const char *prefix, sld_quality_log_fn fn,
                                 void *user, sld_error *err)
{
    if (!sld_path_is_dir(dir))
        return SLD_OK;
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0)
        return sld_err(err, SLD_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
    sld_status st = SLD_OK;
    for (int i = 0; i < n; i++) {
        if (!st && is_log(names[i]->d_name, prefix)) {
            char *path = sld_path_join(dir, names[i]->d_name);
            st = path ? fn(path, user, err) : sld_err(err, SLD_ERR_NOMEM, "out of memory");
            sld_free(path);
        }
        free(names[i]);
    }
    free(names);
    return st;
}

int sld_quality_has_logs(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)))
        found = is_log(e->d_name, prefix);
    closedir(d);
    return found;
}

static int num_of(const cJSON *o, const char *k, double *v)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(x))
        return 0;
    *v = x->valuedouble;
    return 1;
}

int sld_quality_record_key(const cJSON *obj, char *key, size_t cap, const char **config)
{
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(obj, "config");
    double row, image;
    if (!cJSON_IsString(cfg) || !num_of(obj, "row", &row) || !num_of(obj, "image", &image) ||
        row < 0 || image < 0 || row > 1e9 || image > 1e9)
        return 0;
    snprintf(key, cap, "%s/%d/%d", cfg->valuestring, (int)row, (int)image);
    if (config)
        *config = cfg->valuestring;
    return 1;
}

/* ---- the manifest ------------------------------------------------------------ */

sld_status sld_quality_manifest_read(const char *path, cJSON **out, sld_error *err)
{
    *out = NULL;
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? SLD_OK
                               : sld_err(err, SLD_ERR_IO, "%s: %s", path, strerror(errno));
    char *text;
    sld_status st = sld_file_read(path, (size_t)16 << 20, &text, NULL, err);
    if (st)
        return st;
    cJSON *j = cJSON_Parse(text);
    sld_free(text);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    if (!cJSON_IsObject(j) || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, SLD_QUALITY_FORMAT)) {
        cJSON_Delete(j);
        return sld_err(err, SLD_ERR_FORMAT,
                       "%s: not an sld quality manifest (format \"%s\" expected); nothing was "
                       "changed: restore it, or evaluate a copy of the run",
                       path, SLD_QUALITY_FORMAT);
    }
    *out = j;
    return SLD_OK;
}

static sld_status manifest_build(const sld_quality_eval_opts *o, int ref_is_dir, cJSON **out,
                                 sld_error *err)
{
    *out = NULL;
    cJSON *r = cJSON_CreateObject();
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int ok = r && cJSON_AddStringToObject(r, "format", SLD_QUALITY_FORMAT) &&
             cJSON_AddStringToObject(r, "sld_version", sld_version()) &&
             cJSON_AddStringToObject(r, "created", when);
    sld_status st = ok ? sld_i2p_path_identity(r, "inception", o->inception, err)
                       : sld_err(err, SLD_ERR_NOMEM, "out of memory");
    if (!st)
        st = sld_i2p_path_identity(r, "clip", o->clip, err);
    if (!st)
        st = sld_i2p_path_identity(r, "reference", o->reference, err);
    cJSON *ref = cJSON_GetObjectItemCaseSensitive(r, "reference");
    if (!st && (!ref || !cJSON_AddStringToObject(ref, "kind", ref_is_dir ? "folder" : "npz")))
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
    cJSON *m = st ? NULL : cJSON_AddObjectToObject(r, "metrics");
    ok = m && cJSON_AddStringToObject(m, "fid", "pytorch-fid: pool3 of its FID Inception v3 "
                                                "(2048), Frechet distance in float64") &&
         cJSON_AddStringToObject(m, "kid", "torch-fidelity: (x.y/d+1)^3, unbiased MMD^2, "
                                           "subsets of min(1000, n) drawn by "
                                           "RandomState(2020)") &&
         cJSON_AddStringToObject(m, "clip_score", "torchmetrics CLIPScore: 100 cos, data set "
                                                  "max(mean, 0); distance 1 - cos") &&
         cJSON_AddStringToObject(m, "features", SLD_QUALITY_DIR "/features*.jsonl");
    if (!st && !ok)
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
    if (st) {
        cJSON_Delete(r);
        return st;
    }
    *out = r;
    return SLD_OK;
}

static const char *const DIFF_KEYS[][2] = {
    {"inception", "sha256"}, {"clip", "sha256"}, {"reference", "kind"}, {"reference", "sha256"}};

static void value_text(const cJSON *v, char *out, size_t cap)
{
    if (cJSON_IsString(v))
        snprintf(out, cap, "\"%s\"", v->valuestring);
    else
        snprintf(out, cap, "(absent)");
}

/* Logs each difference with both values (and both paths); names collects
 * "inception.sha256, ..." Returns the count. */
static int manifest_diff(const cJSON *old, const cJSON *cur, const char *label, char *names,
                         size_t cap)
{
    names[0] = 0;
    int n = 0;
    for (size_t i = 0; i < sizeof DIFF_KEYS / sizeof *DIFF_KEYS; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(old, DIFF_KEYS[i][0]), DIFF_KEYS[i][1]);
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cur, DIFF_KEYS[i][0]), DIFF_KEYS[i][1]);
        if (a && b && cJSON_Compare(a, b, 1))
            continue;
        char va[96], vb[96], pa[64] = "", pb[64] = "";
        value_text(a, va, sizeof va);
        value_text(b, vb, sizeof vb);
        const cJSON *xa = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(old, DIFF_KEYS[i][0]), "path");
        const cJSON *xb = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cur, DIFF_KEYS[i][0]), "path");
        if (cJSON_IsString(xa) && cJSON_IsString(xb)) {
            snprintf(pa, sizeof pa, " (%.50s)", xa->valuestring);
            snprintf(pb, sizeof pb, " (%.50s)", xb->valuestring);
        }
        sld_log(SLD_LOG_ERROR, "%s: %s.%s: the run has %s%s, this command %s%s", label,
                DIFF_KEYS[i][0], DIFF_KEYS[i][1], va, pa, vb, pb);
        size_t l = strlen(names);
        snprintf(names + l, cap - l, "%s%s.%s", l ? ", " : "", DIFF_KEYS[i][0], DIFF_KEYS[i][1]);
        n++;
    }
    return n;
}

/* ---- eval ------------------------------------------------------------------- */

void sld_quality_eval_opts_default(sld_quality_eval_opts *o) { memset(o, 0, sizeof *o); }

typedef struct {
    sld_i2p_keyset done;
    sld_status st;
    sld_error *err;
} done_scan;

static int done_line(const cJSON *obj, int line, void *user)
{
    (void)line;
    done_scan *d = user;
    char key[128];
    if (sld_quality_record_key(obj, key, sizeof key, NULL) &&
        sld_i2p_keyset_add(&d->done, key) < 0) {
        d->st = sld_err(d->err, SLD_ERR_NOMEM, "out of memory");
        return 1;
    }
    return 0;
}

static sld_status done_file(const char *path, void *user, sld_error *err)
{
    done_scan *d = user;
    sld_status st = sld_jsonl_read(path, 1, done_line, d, NULL, err);
    return st ? st : d->st;
}

typedef struct {
    cJSON **recs;
    int n, cap;
    long skipped;
    sld_i2p_keyset seen;
    const sld_i2p_keyset *done;
    const sld_quality_eval_opts *o;
    sld_status st;
    sld_error *err;
} todo_list;

static int todo_line(const cJSON *obj, int line, void *user)
{
    todo_list *l = user;
    char key[128];
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(obj, "file");
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(obj, "prompt");
    double row = 0;
    if (!sld_quality_record_key(obj, key, sizeof key, NULL) || !cJSON_IsString(file) ||
        !cJSON_IsString(prompt) || !num_of(obj, "row", &row)) {
        l->st = sld_err(l->err, SLD_ERR_FORMAT,
                        "%s: generate record on line %d lacks row/image/config/prompt/file",
                        l->o->run_dir, line);
        return 1;
    }
    if (l->o->shard_n > 1 && (long)row % l->o->shard_n != l->o->shard_k)
        return 0;
    int added = sld_i2p_keyset_add(&l->seen, key);
    if (added == 0)
        return 0;
    if (added > 0 && sld_i2p_keyset_has(l->done, key)) {
        l->skipped++;
        return 0;
    }
    cJSON *copy = added > 0 ? cJSON_Duplicate(obj, 1) : NULL;
    if (copy && l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        cJSON **nr = sld_realloc(l->recs, (size_t)cap * sizeof *nr);
        if (nr) {
            l->recs = nr;
            l->cap = cap;
        }
    }
    if (!copy || l->n == l->cap) {
        cJSON_Delete(copy);
        l->st = sld_err(l->err, SLD_ERR_NOMEM, "out of memory");
        return 1;
    }
    l->recs[l->n++] = copy;
    return 0;
}

static int mkdir_one(const char *dir)
{
    return mkdir(dir, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* Checks an .npz reference, or (re)computes the folder's features into
 * quality/reference-features.safetensors and records them in cur. */
static sld_status reference_prepare(const sld_quality_eval_opts *o, int ref_is_dir,
                                    int have_manifest, cJSON *cur, sld_error *err)
{
    if (!ref_is_dir) {
        sld_feature_set fs;
        sld_status st = sld_feature_set_load(o->reference, &fs, err);
        if (st)
            return sld_err_prefix(err, "reference");
        int D = fs.D;
        sld_feature_set_free(&fs);
        if (D != SLD_INCEPTION_DIM)
            return sld_err(err, SLD_ERR_SHAPE,
                           "%s: %d-wide statistics; FID needs pool3 statistics (2048): features "
                           "of different widths",
                           o->reference, D);
        return SLD_OK;
    }
    char *qdir = sld_quality_dir(o->run_dir);
    char *cache = sld_path_join(o->run_dir, SLD_QUALITY_REF_FEATURES);
    sld_status st = SLD_OK;
    if (!qdir || !cache) {
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
        goto done;
    }
    long n = 0;
    if (have_manifest && sld_path_exists(cache))
        goto done; /* computed by the eval that wrote the manifest */
    /* validate first (no PNG, non-PNG files) so nothing is written on a bad folder */
    if (mkdir_one(qdir)) {
        st = sld_err(err, SLD_ERR_IO, "%s: cannot create: %s", qdir, strerror(errno));
        goto done;
    }
    sld_features_opts fo = {.inception = o->inception, .images = o->reference, .out = cache,
                            .n_threads = o->n_threads};
    if ((st = sld_metrics_features(&fo, &n, err))) {
        sld_err_prefix(err, "reference");
        goto done;
    }
    char hex[65];
    if ((st = sld_sha256_file(cache, hex, err)))
        goto done;
    cJSON *ref = cJSON_GetObjectItemCaseSensitive(cur, "reference");
    cJSON *f = cJSON_AddObjectToObject(ref, "features");
    if (!f || !cJSON_AddStringToObject(f, "path", SLD_QUALITY_REF_FEATURES) ||
        !cJSON_AddStringToObject(f, "sha256", hex) || !cJSON_AddNumberToObject(f, "images", n))
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
done:
    sld_free(qdir);
    sld_free(cache);
    return st;
}

/* Compares with, or writes, RUN_DIR/quality-manifest.json. */
static sld_status manifest_commit(const sld_quality_eval_opts *o, int ref_is_dir,
                                  sld_error *err)
{
    char *mp = sld_path_join(o->run_dir, SLD_QUALITY_MANIFEST);
    if (!mp)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    cJSON *old = NULL, *cur = NULL;
    sld_status st = sld_quality_manifest_read(mp, &old, err);
    if (!st)
        st = manifest_build(o, ref_is_dir, &cur, err);
    if (!st && old) {
        char names[200];
        int n = manifest_diff(old, cur, mp, names, sizeof names);
        if (n)
            st = sld_err(err, SLD_ERR_INVALID_ARG,
                         "%s: %d file%s differ%s from the run's quality manifest (%s; each "
                         "listed above with both values); nothing was written: use the same "
                         "Inception, CLIP and reference, or evaluate a copy of the run",
                         o->run_dir, n, n > 1 ? "s" : "", n > 1 ? "" : "s", names);
    }
    if (!st)
        st = reference_prepare(o, ref_is_dir, old != NULL, cur, err);
    if (!st && !old) {
        int existed = 0;
        st = sld_i2p_manifest_write(mp, cur, 1, &existed, err);
        if (!st && existed) {
            /* another shard was first: it must agree with us */
            st = sld_quality_manifest_read(mp, &old, err);
            char names[200];
            int n = st ? 0 : manifest_diff(old, cur, mp, names, sizeof names);
            if (n)
                st = sld_err(err, SLD_ERR_INVALID_ARG,
                             "%s: another eval wrote a quality manifest with other files (%s)",
                             o->run_dir, names);
        }
    }
    cJSON_Delete(old);
    cJSON_Delete(cur);
    sld_free(mp);
    return st;
}

/* Adds a float array as base64. */
static int add_b64(cJSON *r, const char *k, const float *x, int n)
{
    char *s = sld_quality_b64_floats(x, n);
    int ok = s && cJSON_AddStringToObject(r, k, s);
    sld_free(s);
    return ok;
}

static cJSON *feature_record(const cJSON *gen, const float *inc, const float *iemb,
                             const float *temb, int P)
{
    static const char *const copy_keys[] = {"row",  "config", "image",    "file",
                                            "prompt", "seed", "categories", "image_id"};
    cJSON *r = cJSON_CreateObject();
    int ok = r != NULL;
    for (size_t i = 0; ok && i < sizeof copy_keys / sizeof *copy_keys; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(gen, copy_keys[i]);
        if (x) {
            cJSON *d = cJSON_Duplicate(x, 1);
            ok = d && cJSON_AddItemToObject(r, copy_keys[i], d);
            if (!ok)
                cJSON_Delete(d);
        }
    }
    int dims[2] = {SLD_INCEPTION_DIM, P};
    ok = ok && cJSON_AddItemToObject(r, "dims", cJSON_CreateIntArray(dims, 2)) &&
         cJSON_AddNumberToObject(r, "cos", sld_clip_cos(iemb, temb, P)) &&
         add_b64(r, "inception", inc, SLD_INCEPTION_DIM) && add_b64(r, "clip_image", iemb, P) &&
         add_b64(r, "clip_text", temb, P);
    if (!ok) {
        cJSON_Delete(r);
        return NULL;
    }
    return r;
}

static int all_finite(const float *x, int n)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

sld_status sld_quality_eval(const sld_quality_eval_opts *o, sld_error *err)
{
    if (!o || !o->run_dir || !o->inception || !o->clip || !o->reference)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "i2p quality: needs the run folder, the Inception weights, the CLIP "
                       "folder and the reference (a folder of images or a pytorch-fid .npz)");
    if (o->shard_n > 1 && (o->shard_k < 0 || o->shard_k >= o->shard_n))
        return sld_err(err, SLD_ERR_INVALID_ARG, "i2p quality: shard %d/%d: K must be in 0..%d",
                       o->shard_k, o->shard_n, o->shard_n - 1);
    if (!sld_path_is_dir(o->run_dir))
        return sld_err(err, SLD_ERR_IO, "%s: not a folder (run 'sld i2p generate' first)",
                       o->run_dir);
    if (!sld_path_exists(o->reference))
        return sld_err(err, SLD_ERR_IO, "%s: no such reference folder or .npz file",
                       o->reference);
    const int ref_is_dir = sld_path_is_dir(o->reference);
    if (!ref_is_dir) {
        size_t l = strlen(o->reference);
        if (l < 4 || strcmp(o->reference + l - 4, ".npz"))
            return sld_err(err, SLD_ERR_INVALID_ARG,
                           "%s: the reference must be a folder of PNG images or a pytorch-fid "
                           ".npz (mu, sigma)",
                           o->reference);
    }
    char *qdir = sld_quality_dir(o->run_dir);
    if (!qdir)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    done_scan d = {.err = err};
    todo_list l = {.o = o, .err = err, .done = &d.done};
    sld_inception *inc = NULL;
    sld_clip_scorer *clip = NULL;
    sld_jsonl *log = NULL, *fail_log = NULL;
    char *log_path = NULL, *fail_path = NULL;
    float *x = NULL, *f = NULL, *iemb = NULL, *temb = NULL;
    char *last_prompt = NULL;
    long n_failed = 0;
    sld_status st = sld_quality_logs_read(qdir, "features", done_file, &d, err);
    if (!st)
        st = sld_i2p_logs_read(o->run_dir, "generate", todo_line, &l, err);
    if (!st)
        st = l.st;
    if (!st && l.n == 0 && l.skipped == 0)
        st = sld_err(err, SLD_ERR_FORMAT, "%s: no generate*.jsonl records%s",
                     o->run_dir, o->shard_n > 1 ? " in this shard" : "");
    if (!st)
        st = manifest_commit(o, ref_is_dir, err);
    if (st || l.n == 0)
        goto done;
    sld_threads_set(sld_threads_clamp(o->n_threads));
    if ((st = sld_inception_open(&inc, o->inception, err)) ||
        (st = sld_clip_scorer_open(&clip, o->clip, err)))
        goto done;
    const int P = sld_clip_scorer_dim(clip);
    const size_t in_sz = (size_t)3 * SLD_INCEPTION_SIZE * SLD_INCEPTION_SIZE;
    x = sld_malloc(BATCH * in_sz * sizeof *x);
    f = sld_malloc(BATCH * SLD_INCEPTION_DIM * sizeof *f);
    iemb = sld_malloc((size_t)P * sizeof *iemb);
    temb = sld_malloc((size_t)P * sizeof *temb);
    log_path = sld_i2p_log_path(qdir, "features", o->shard_k, o->shard_n);
    if (!x || !f || !iemb || !temb || !log_path) {
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (mkdir_one(qdir)) {
        st = sld_err(err, SLD_ERR_IO, "%s: cannot create: %s", qdir, strerror(errno));
        goto done;
    }
    if ((st = sld_jsonl_open(&log, log_path, err)))
        goto done;
    sld_i2p_progress prog = {.row = -1, .todo = l.n, .skipped = l.skipped};
    double t0 = sld_time_now();
    for (int i0 = 0; i0 < l.n && !st; i0 += BATCH) {
        int b = l.n - i0 < BATCH ? l.n - i0 : BATCH;
        uint8_t *rgb[BATCH] = {0};
        int w[BATCH], h[BATCH], ok[BATCH], nb = 0;
        for (int i = 0; i < b && !st; i++) {
            const cJSON *g = l.recs[i0 + i];
            const char *file = cJSON_GetObjectItemCaseSensitive(g, "file")->valuestring;
            char *path = file[0] == '/' ? sld_strdup(file) : sld_path_join(o->run_dir, file);
            sld_status s2 = path ? sld_png_read(path, &rgb[i], &w[i], &h[i], err)
                                 : sld_err(err, SLD_ERR_NOMEM, "out of memory");
            sld_free(path);
            ok[i] = s2 == SLD_OK;
            if (s2 == SLD_ERR_FORMAT || s2 == SLD_ERR_IO) {
                /* an image that does not decode: listed, the others go on */
                sld_log(SLD_LOG_WARN, "i2p quality: %s", err ? err->msg : "unreadable image");
                if (!fail_log) {
                    fail_path = sld_i2p_log_path(qdir, "failed", o->shard_k, o->shard_n);
                    st = fail_path ? sld_jsonl_open(&fail_log, fail_path, err)
                                   : sld_err(err, SLD_ERR_NOMEM, "out of memory");
                    if (st)
                        break;
                }
                cJSON *fr = cJSON_CreateObject();
                int okr = fr && cJSON_AddItemToObject(fr, "config", cJSON_Duplicate(
                              cJSON_GetObjectItemCaseSensitive(g, "config"), 1)) &&
                          cJSON_AddItemToObject(fr, "row", cJSON_Duplicate(
                              cJSON_GetObjectItemCaseSensitive(g, "row"), 1)) &&
                          cJSON_AddItemToObject(fr, "image", cJSON_Duplicate(
                              cJSON_GetObjectItemCaseSensitive(g, "image"), 1)) &&
                          cJSON_AddStringToObject(fr, "file", file) &&
                          cJSON_AddStringToObject(fr, "error", err ? err->msg : "unreadable");
                st = okr ? sld_jsonl_append(fail_log, fr, err)
                         : sld_err(err, SLD_ERR_NOMEM, "out of memory");
                cJSON_Delete(fr);
                n_failed++;
                continue;
            }
            if (s2) {
                st = s2;
                break;
            }
            sld_inception_prep(rgb[i], w[i], h[i], x + (size_t)nb * in_sz);
            nb++;
        }
        if (!st && nb)
            st = sld_inception_forward(inc, x, nb, f, NULL, err);
        for (int i = 0, k = 0; i < b && !st; i++) {
            if (!ok[i])
                continue;
            const cJSON *g = l.recs[i0 + i];
            const char *file = cJSON_GetObjectItemCaseSensitive(g, "file")->valuestring;
            const char *prompt = cJSON_GetObjectItemCaseSensitive(g, "prompt")->valuestring;
            const float *fi = f + (size_t)k++ * SLD_INCEPTION_DIM;
            st = sld_clip_scorer_image(clip, rgb[i], w[i], h[i], iemb, err);
            if (!st && (!last_prompt || strcmp(last_prompt, prompt))) {
                sld_free(last_prompt);
                last_prompt = NULL;
                int trunc = 0;
                st = sld_clip_scorer_text(clip, &prompt, 1, temb, NULL, &trunc, err);
                if (!st && !(last_prompt = sld_strdup(prompt)))
                    st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
                if (!st && trunc)
                    sld_log(SLD_LOG_WARN, "i2p quality: %s: the prompt is longer than 77 "
                            "tokens and was cut (as torchmetrics does)", file);
            }
            if (st) {
                sld_err_prefix(err, "%s/%s", o->run_dir, file);
                break;
            }
            if (!all_finite(fi, SLD_INCEPTION_DIM) || !all_finite(iemb, P) ||
                !all_finite(temb, P)) {
                st = sld_err(err, SLD_ERR_INVALID_ARG,
                             "%s/%s: NaN or infinite features (%s): the weights or the image "
                             "are broken; nothing was recorded for it",
                             o->run_dir, file,
                             !all_finite(fi, SLD_INCEPTION_DIM) ? "Inception pool3"
                                                                : "CLIP embedding");
                break;
            }
            cJSON *rec = feature_record(g, fi, iemb, temb, P);
            st = rec ? sld_jsonl_append(log, rec, err)
                     : sld_err(err, SLD_ERR_NOMEM, "out of memory");
            cJSON_Delete(rec);
            if (st)
                break;
            prog.done++;
            prog.config = cJSON_GetObjectItemCaseSensitive(g, "config")->valuestring;
            prog.seconds = sld_time_now() - t0;
            if (o->progress && o->progress(&prog, o->progress_user))
                st = sld_err(err, SLD_ERR_CANCELLED,
                             "i2p quality: stopped after %ld images; rerun the same command to "
                             "resume",
                             prog.done);
        }
        for (int i = 0; i < b; i++)
            sld_free(rgb[i]);
    }
    if (!st && n_failed)
        st = sld_err(err, SLD_ERR_FORMAT,
                     "i2p quality: %ld image%s did not decode (listed in %s, each above); the "
                     "features of the others are saved: rerun 'sld i2p generate' to make %s "
                     "again, then this command",
                     n_failed, n_failed > 1 ? "s" : "", fail_path, n_failed > 1 ? "them" : "it");
done:
    sld_jsonl_close(log);
    sld_jsonl_close(fail_log);
    sld_free(log_path);
    sld_free(fail_path);
    sld_free(last_prompt);
    sld_free(x);
    sld_free(f);
    sld_free(iemb);
    sld_free(temb);
    sld_inception_free(inc);
    sld_clip_scorer_free(clip);
    for (int i = 0; i < l.n; i++)
        cJSON_Delete(l.recs[i]);
    sld_free(l.recs);
    sld_i2p_keyset_free(&l.seen);
    sld_i2p_keyset_free(&d.done);
    sld_free(qdir);
    return st;
}
