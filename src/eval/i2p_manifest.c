/*
 * i2p_manifest.c — run manifests of the I2P test bed (docs/I2P.md, "The run
 * manifest"): what decides a run's images, written once per run folder, and
 * the comparison that makes resuming strict.
 *
 * Compared: everything except the keys listed in SKIP (informational: paths,
 * times, the version, file stats, derived counts). Configs are compared by
 * name, so a command may add configs or run a subset. Model fields are only
 * compared when the caller has the model (the CLI checks everything else
 * before it spends time loading one).
 */
#include "eval/i2p.h"
#include "ops/packed.h"
#include "pipeline/model.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RUN_FORMAT "sld-i2p-run/1"

static int add_str_or_null(cJSON *o, const char *k, const char *v)
{
    return v ? cJSON_AddStringToObject(o, k, v) != NULL : cJSON_AddNullToObject(o, k) != NULL;
}

static cJSON *safety_json(const sld_safety *s)
{
    cJSON *o = cJSON_CreateObject();
    if (o && cJSON_AddNumberToObject(o, "guidance_scale", s->guidance_scale) &&
        cJSON_AddNumberToObject(o, "warmup_steps", s->warmup_steps) &&
        cJSON_AddNumberToObject(o, "threshold", s->threshold) &&
        cJSON_AddNumberToObject(o, "momentum_scale", s->momentum_scale) &&
        cJSON_AddNumberToObject(o, "mom_beta", s->mom_beta))
        return o;
    cJSON_Delete(o);
    return NULL;
}

static const char *const PRESETS[] = {"off", "weak", "medium", "strong", "max"};

/* mtime and ctime as "seconds.nanoseconds", inode as decimal: exact. */
static void file_stamps(const struct stat *st, char out[3][48])
{
    snprintf(out[0], 48, "%lld.%09ld", (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);
    snprintf(out[1], 48, "%lld.%09ld", (long long)st->st_ctim.tv_sec, (long)st->st_ctim.tv_nsec);
    snprintf(out[2], 48, "%llu", (unsigned long long)st->st_ino);
}

/* The old manifest's hash of rel when its size/mtime/ctime/inode match st. */
static const char *cached_hash(const cJSON *old, const char *rel, const struct stat *st)
{
    const cJSON *files =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(old, "model"), "files");
    const cJSON *f;
    cJSON_ArrayForEach(f, files)
    {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(f, "rel");
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(f, "sha256");
        if (!cJSON_IsString(r) || strcmp(r->valuestring, rel) || !cJSON_IsString(h) ||
            strlen(h->valuestring) != 64)
            continue;
        char stamp[3][48];
        file_stamps(st, stamp);
        const char *keys[3] = {"mtime", "ctime", "inode"};
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(f, "size");
        int same = cJSON_IsNumber(size) && size->valuedouble == (double)st->st_size;
        for (int i = 0; i < 3; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, keys[i]);
            same &= cJSON_IsString(v) && !strcmp(v->valuestring, stamp[i]);
        }
        return same ? h->valuestring : NULL;
    }
    return NULL;
}

static sld_status model_json(const sld_i2p_gen_opts *o, const cJSON *old, cJSON *root,
                             sld_error *err)
{
    cJSON *m = cJSON_AddObjectToObject(root, "model");
    if (!m)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    const sld_model *md = o->model;
    if (!md) {
        int ok = add_str_or_null(m, "path", o->model_label) && cJSON_AddNullToObject(m, "sha256");
        return ok ? SLD_OK : sld_err(err, SLD_ERR_NOMEM, "out of memory");
    }
    sld_model_file *f;
    int n;
    sld_status st = sld_model_files_list(md, &f, &n, err);
    if (st)
        return st;
    cJSON *files = cJSON_CreateArray();
    int ok = files != NULL;
    for (int i = 0; ok && !st && i < n; i++) {
        struct stat sb;
        if (stat(f[i].path, &sb) != 0) {
            st = sld_err(err, SLD_ERR_IO, "%s: cannot stat: %s", f[i].path, strerror(errno));
            break;
        }
        const char *h = old ? cached_hash(old, f[i].rel, &sb) : NULL;
        if (h) {
            memcpy(f[i].sha256, h, 65);
        } else {
            sld_model_files_recall(md, &f[i], 1); /* hashed earlier in this process */
            st = sld_model_files_hash(&f[i], 1, err);
        }
        if (st)
            break;
        cJSON *e = cJSON_CreateObject();
        char stamp[3][48];
        file_stamps(&sb, stamp);
        ok = e && cJSON_AddItemToArray(files, e) && cJSON_AddStringToObject(e, "rel", f[i].rel) &&
             cJSON_AddNumberToObject(e, "size", (double)sb.st_size) &&
             cJSON_AddStringToObject(e, "mtime", stamp[0]) &&
             cJSON_AddStringToObject(e, "ctime", stamp[1]) &&
             cJSON_AddStringToObject(e, "inode", stamp[2]) &&
             cJSON_AddStringToObject(e, "sha256", f[i].sha256);
    }
    if (!st && ok) {
        char hex[65], short_hash[11];
        sld_model_identity_of(f, n, hex);
        sld_model_identity_set(md, hex);
        sld_model_files_remember(md, f, n);
        memcpy(short_hash, hex, 10);
        short_hash[10] = 0;
        ok = cJSON_AddStringToObject(m, "path", md->path) &&
             cJSON_AddStringToObject(m, "sha256", hex) &&
             cJSON_AddStringToObject(m, "hash", short_hash) &&
             cJSON_AddStringToObject(m, "arch", md->arch == SLD_ARCH_SD2 ? "sd2" : "sd1") &&
             cJSON_AddStringToObject(m, "prediction",
                                     md->prediction == SLD_PRED_V ? "v_prediction" : "epsilon") &&
             cJSON_AddStringToObject(m, "precision", sld_model_precision_name(md)) &&
             /* Winograd changes results by rounding: recorded, compared */
             cJSON_AddStringToObject(m, "conv_algo", sld_model_conv_algo_name(md)) &&
             add_str_or_null(m, "config_dir", md->opts.config_dir) &&
             cJSON_AddItemToObject(m, "files", files);
        if (ok)
            files = NULL;
    }
    cJSON_Delete(files);
    sld_model_files_free(f, n);
    if (!st && !ok)
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
    return st;
}

sld_status sld_i2p_manifest_build(const sld_i2p_gen_opts *o, const sld_i2p_set *set,
                                  const sld_i2p_config *cfg, int n_cfg, const cJSON *old,
                                  cJSON **out, sld_error *err)
{
    *out = NULL;
    cJSON *r = cJSON_CreateObject();
    if (!r)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int ok = cJSON_AddStringToObject(r, "format", RUN_FORMAT) &&
             cJSON_AddStringToObject(r, "sld_version", sld_version()) &&
             cJSON_AddStringToObject(r, "created", when);
    sld_status st = ok ? model_json(o, old, r, err) : sld_err(err, SLD_ERR_NOMEM, "out of memory");
    cJSON *g = !st ? cJSON_AddObjectToObject(r, "generation") : NULL;
    ok = !st && g && cJSON_AddStringToObject(g, "sampler", sld_i2p_sampler_name(o->gen.sampler)) &&
         cJSON_AddBoolToObject(g, "karras", o->gen.karras) &&
         cJSON_AddNumberToObject(g, "eta", o->gen.eta) &&
         cJSON_AddNumberToObject(g, "steps", o->gen.steps) &&
         (o->cfg_from_csv ? cJSON_AddStringToObject(g, "cfg", "csv") != NULL
                          : cJSON_AddNumberToObject(g, "cfg", o->gen.cfg) != NULL) &&
         (o->size_from_csv ? cJSON_AddStringToObject(g, "width", "csv") != NULL &&
                                 cJSON_AddStringToObject(g, "height", "csv") != NULL
                           : cJSON_AddNumberToObject(g, "width", o->gen.width) != NULL &&
                                 cJSON_AddNumberToObject(g, "height", o->gen.height) != NULL) &&
         cJSON_AddNumberToObject(g, "images_per_prompt", o->n_images) &&
         cJSON_AddNumberToObject(g, "batch", o->batch) &&
         (o->seed >= 0 ? cJSON_AddNumberToObject(g, "seed", (double)o->seed) != NULL
                       : cJSON_AddStringToObject(g, "seed", "row") != NULL) &&
         cJSON_AddStringToObject(g, "rng",
                                 o->gen.rng_variant == SLD_RNG_DEFAULT ? "default" : "avx2");
    cJSON *p = ok ? cJSON_AddObjectToObject(r, "prompts") : NULL;
    const sld_i2p_filter *f = &o->filter;
    const char *fmt = sld_i2p_set_format(set);
    ok = ok && p && cJSON_AddStringToObject(p, "file", o->prompts) &&
         cJSON_AddStringToObject(p, "format", fmt) &&
         cJSON_AddStringToObject(p, "sha256", sld_i2p_set_sha256(set)) &&
         (strcmp(fmt, "coco-captions") ||
          cJSON_AddNumberToObject(p, "sample_seed", f->sample_seed)) &&
         add_str_or_null(p, "categories", f->categories && *f->categories ? f->categories : NULL) &&
         cJSON_AddBoolToObject(p, "hard_only", f->hard_only) &&
         cJSON_AddNumberToObject(p, "limit", f->limit) &&
         cJSON_AddNumberToObject(p, "shard_n", f->shard_n > 1 ? f->shard_n : 1) &&
         cJSON_AddNumberToObject(p, "rows", sld_i2p_set_rows_unsharded(set)) &&
         cJSON_AddBoolToObject(p, "skip_bad_rows", f->skip_bad_rows);
    cJSON *bad = ok ? cJSON_AddArrayToObject(p, "bad_rows") : NULL;
    ok = ok && bad;
    for (int i = 0; ok && i < sld_i2p_set_bad_count(set); i++) {
        const sld_i2p_bad_row *b = sld_i2p_set_bad(set, i);
        cJSON *e = cJSON_CreateObject();
        ok = e && cJSON_AddItemToArray(bad, e) && cJSON_AddNumberToObject(e, "row", b->row) &&
             cJSON_AddNumberToObject(e, "line", b->line) &&
             cJSON_AddStringToObject(e, "reason", b->reason);
    }
    cJSON *cs = ok ? cJSON_AddArrayToObject(r, "configs") : NULL;
    ok = ok && cs;
    for (int i = 0; ok && i < n_cfg; i++) {
        cJSON *c = cJSON_CreateObject();
        ok = c && cJSON_AddItemToArray(cs, c) && cJSON_AddStringToObject(c, "name", cfg[i].name) &&
             cJSON_AddStringToObject(c, "preset", PRESETS[cfg[i].preset]) &&
             cJSON_AddItemToObject(c, "sld", safety_json(&cfg[i].sld)) &&
             cJSON_AddStringToObject(c, "safety_concept", cfg[i].concept) &&
             add_str_or_null(c, "negative_prompt", cfg[i].negative);
    }
    /* output options: not part of what makes an image (never compared) */
    cJSON *out_opts = ok ? cJSON_AddObjectToObject(r, "outputs") : NULL;
    ok = ok && out_opts && cJSON_AddBoolToObject(out_opts, "sld_maps", o->sld_maps);
    cJSON *pl = ok ? cJSON_AddObjectToObject(r, "planned") : NULL;
    int rows = sld_i2p_set_rows_unsharded(set);
    ok = ok && pl && cJSON_AddNumberToObject(pl, "rows", rows) &&
         cJSON_AddNumberToObject(pl, "configs", n_cfg) &&
         cJSON_AddNumberToObject(pl, "images", (double)rows * n_cfg * o->n_images);
    if (!st && !ok)
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
    if (st) {
        cJSON_Delete(r);
        return st;
    }
    *out = r;
    return SLD_OK;
}

/* ---- comparison ----------------------------------------------------------- */

static const char *const SKIP[] = {"created",           "sld_version",   "model.path",
                                   "model.files",       "model.hash",    "model.config_dir",
                                   "prompts.file",      "prompts.rows",  "prompts.bad_rows",
                                   "planned",           "configs",       "outputs"};

typedef struct {
    const char *label;
    int compare_model;
    int n;
    char *names;
    size_t cap;
} diff_ctx;

static void value_text(const cJSON *v, char *out, size_t cap)
{
    if (!v) {
        snprintf(out, cap, "(absent)");
        return;
    }
    char *s = cJSON_PrintUnformatted(v);
    if (!s) {
        snprintf(out, cap, "?");
        return;
    }
    if (strlen(s) > 90)
        snprintf(out, cap, "%.80s...\" (%zu characters)", s, strlen(s));
    else
        snprintf(out, cap, "%s", s);
    cJSON_free(s);
}

static void report(diff_ctx *d, const char *path, const cJSON *a, const cJSON *b)
{
    char va[160], vb[160];
    value_text(a, va, sizeof va);
    value_text(b, vb, sizeof vb);
    sld_log(SLD_LOG_ERROR, "%s: %s: the run has %s, this command %s", d->label, path, va, vb);
    size_t l = strlen(d->names);
    if (l + strlen(path) + 3 < d->cap)
        snprintf(d->names + l, d->cap - l, "%s%s", l ? ", " : "", path);
    else if (l + 5 < d->cap && !strstr(d->names, "..."))
        snprintf(d->names + l, d->cap - l, ", ...");
    d->n++;
}

/* Keys newer than some manifests: absent in the folder's manifest reads as
 * this value (a run made before COCO and JSONL prompt sets read a CSV). */
static const struct {
    const char *path, *absent_as;
} DEFAULTS[] = {{"prompts.format", "i2p-csv"}, {"model.conv_algo", "direct"}};

static int absent_default(const char *path, const cJSON *a, const cJSON *b)
{
    for (size_t i = 0; !a && i < sizeof DEFAULTS / sizeof *DEFAULTS; i++)
        if (!strcmp(path, DEFAULTS[i].path))
            return cJSON_IsString(b) && !strcmp(b->valuestring, DEFAULTS[i].absent_as);
    return 0;
}

static int skipped(const diff_ctx *d, const char *path)
{
    for (size_t i = 0; i < sizeof SKIP / sizeof *SKIP; i++)
        if (!strcmp(path, SKIP[i]))
            return 1;
    return !d->compare_model && (!strcmp(path, "model") || !strncmp(path, "model.", 6));
}

static void diff_rec(diff_ctx *d, const char *path, const cJSON *a, const cJSON *b)
{
    if (skipped(d, path))
        return;
    if (cJSON_IsObject(a) && cJSON_IsObject(b)) {
        const cJSON *x;
        char sub[256];
        cJSON_ArrayForEach(x, a)
        {
            snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", x->string);
            diff_rec(d, sub, x, cJSON_GetObjectItemCaseSensitive(b, x->string));
        }
        cJSON_ArrayForEach(x, b)
        {
            if (cJSON_GetObjectItemCaseSensitive(a, x->string))
                continue;
            snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", x->string);
            diff_rec(d, sub, NULL, x);
        }
        return;
    }
    if ((!a || !b || !cJSON_Compare(a, b, 1)) && !absent_default(path, a, b))
        report(d, path, a, b);
}

static const cJSON *config_by_name(const cJSON *m, const char *name)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(m, "configs"))
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name))
            return c;
    }
    return NULL;
}

int sld_i2p_manifest_has_config(const cJSON *m, const char *name)
{
    return config_by_name(m, name) != NULL;
}

int sld_i2p_manifest_diff(const cJSON *old, const cJSON *cur, const char *label,
                          int compare_model, char *names, size_t cap, int *added)
{
    diff_ctx d = {.label = label, .compare_model = compare_model, .names = names, .cap = cap};
    names[0] = 0;
    *added = 0;
    diff_rec(&d, "", old, cur);
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(cur, "configs"))
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
        if (!cJSON_IsString(n))
            continue;
        const cJSON *oc = config_by_name(old, n->valuestring);
        if (!oc) {
            (*added)++;
            continue;
        }
        char path[80];
        snprintf(path, sizeof path, "configs.%s", n->valuestring);
        /* both sides are objects: compare their members */
        const cJSON *x;
        char sub[256];
        cJSON_ArrayForEach(x, oc)
        {
            snprintf(sub, sizeof sub, "%s.%s", path, x->string);
            diff_rec(&d, sub, x, cJSON_GetObjectItemCaseSensitive(c, x->string));
        }
        cJSON_ArrayForEach(x, c)
        {
            if (cJSON_GetObjectItemCaseSensitive(oc, x->string))
                continue;
            snprintf(sub, sizeof sub, "%s.%s", path, x->string);
            diff_rec(&d, sub, NULL, x);
        }
    }
    return d.n;
}

/* ---- files ---------------------------------------------------------------- */

sld_status sld_i2p_manifest_read(const char *path, cJSON **out, sld_error *err)
{
    *out = NULL;
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? SLD_OK
                               : sld_err(err, SLD_ERR_IO, "%s: %s", path, strerror(errno));
    char *text;
    sld_status st = sld_file_read(path, (size_t)64 << 20, &text, NULL, err);
    if (st)
        return st;
    cJSON *j = cJSON_Parse(text);
    sld_free(text);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    if (!cJSON_IsObject(j) || !cJSON_IsString(fmt)) {
        cJSON_Delete(j);
        return sld_err(err, SLD_ERR_FORMAT,
                       "%s: not a valid run manifest (not JSON, or no \"format\"); nothing was "
                       "changed: restore it from a backup, or start a new --out folder",
                       path);
    }
    if (strncmp(fmt->valuestring, "sld-i2p-", 8) != 0) {
        cJSON_Delete(j);
        return sld_err(err, SLD_ERR_FORMAT, "%s: format \"%s\" is not an sld I2P manifest", path,
                       fmt->valuestring);
    }
    *out = j;
    return SLD_OK;
}

sld_status sld_i2p_manifest_write(const char *path, const cJSON *m, int create_only,
                                  int *existed, sld_error *err)
{
    if (existed)
        *existed = 0;
    char *text = cJSON_Print(m);
    if (!text)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    size_t len = strlen(text);
    text[len] = 0;
    sld_status st;
    if (!create_only) {
        char *t2 = sld_malloc(len + 2);
        if (!t2) {
            cJSON_free(text);
            return sld_err(err, SLD_ERR_NOMEM, "out of memory");
        }
        memcpy(t2, text, len);
        t2[len] = '\n';
        st = sld_file_write_atomic(path, t2, len + 1, err);
        sld_free(t2);
        cJSON_free(text);
        return st;
    }
    /* Create-only: write a temp file, then link() it into place, which fails
     * with EEXIST when another process was first. */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        cJSON_free(text);
        return sld_err(err, SLD_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    size_t off = 0;
    int ok = 1;
    while (ok && off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        ok = w > 0;
        off += w > 0 ? (size_t)w : 0;
    }
    ok = ok && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    int e = errno;
    close(fd);
    cJSON_free(text);
    if (!ok) {
        unlink(tmp);
        return sld_err(err, SLD_ERR_IO, "%s: cannot write: %s", tmp, strerror(e));
    }
    if (link(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        if (e == EEXIST) {
            if (existed)
                *existed = 1;
            return SLD_OK;
        }
        return sld_err(err, SLD_ERR_IO, "%s: cannot create: %s", path, strerror(e));
    }
    unlink(tmp);
    /* make the new name durable */
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return SLD_OK;
}

/* ---- the eval manifest ---------------------------------------------------- */

#define EVAL_FORMAT "sld-i2p-eval/1"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

sld_status sld_i2p_path_identity(cJSON *parent, const char *key, const char *path,
                                 sld_error *err)
{
    if (!path)
        return cJSON_AddNullToObject(parent, key) ? SLD_OK
                                                  : sld_err(err, SLD_ERR_NOMEM, "out of memory");
    cJSON *o = cJSON_AddObjectToObject(parent, key);
    if (!o || !cJSON_AddStringToObject(o, "path", path))
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    char hex[65];
    sld_status st = SLD_OK;
    if (!sld_path_is_dir(path)) {
        st = sld_sha256_file(path, hex, err);
    } else {
        struct dirent **names;
        int n = scandir(path, &names, NULL, NULL);
        if (n < 0)
            return sld_err(err, SLD_ERR_IO, "%s: cannot list: %s", path, strerror(errno));
        const char **v = sld_malloc((size_t)(n ? n : 1) * sizeof *v);
        int k = 0;
        for (int i = 0; v && i < n; i++)
            if (names[i]->d_name[0] != '.')
                v[k++] = names[i]->d_name;
        sld_sha256 s;
        sld_sha256_init(&s);
        if (!v)
            st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
        else
            qsort(v, (size_t)k, sizeof *v, cmp_str);
        for (int i = 0; !st && i < k; i++) {
            char *p = sld_path_join(path, v[i]);
            char fh[65];
            if (!p) {
                st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
            } else if (!sld_path_is_dir(p)) {
                st = sld_sha256_file(p, fh, err);
                if (!st) {
                    sld_sha256_update(&s, fh, 64);
                    sld_sha256_update(&s, "  ", 2);
                    sld_sha256_update(&s, v[i], strlen(v[i]));
                    sld_sha256_update(&s, "\n", 1);
                }
            }
            sld_free(p);
        }
        uint8_t d[32];
        sld_sha256_final(&s, d);
        sld_sha256_hex(d, hex);
        sld_free(v);
        for (int i = 0; i < n; i++)
            free(names[i]);
        free(names);
    }
    if (!st && !cJSON_AddStringToObject(o, "sha256", hex))
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
    return st;
}

sld_status sld_i2p_eval_manifest_build(const sld_i2p_eval_opts *o, cJSON **out, sld_error *err)
{
    *out = NULL;
    cJSON *r = cJSON_CreateObject();
    if (!r)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int ok = cJSON_AddStringToObject(r, "format", EVAL_FORMAT) &&
             cJSON_AddStringToObject(r, "sld_version", sld_version()) &&
             cJSON_AddStringToObject(r, "created", when);
    sld_status st = ok ? sld_i2p_path_identity(r, "clip", o->clip, err)
                       : sld_err(err, SLD_ERR_NOMEM, "out of memory");
    char *q16 = NULL;
    if (!st && o->clip) {
        q16 = o->q16 ? sld_strdup(o->q16) : sld_data_find("q16/prompts_ViT-L-14.safetensors");
        st = sld_i2p_path_identity(r, "q16", q16, err);
        cJSON *q = cJSON_GetObjectItemCaseSensitive(r, "q16");
        if (!st && q && !cJSON_IsNull(q)) {
            cJSON_AddBoolToObject(q, "shipped", o->q16 == NULL);
            if (!o->q16) /* the shipped file: its location is not part of the identity */
                cJSON_ReplaceItemInObjectCaseSensitive(q, "path",
                                                       cJSON_CreateString("(shipped)"));
        }
    } else if (!st) {
        st = sld_i2p_path_identity(r, "q16", NULL, err);
    }
    sld_free(q16);
    if (!st)
        st = sld_i2p_path_identity(r, "nudenet", o->nudenet, err);
    cJSON *nn = cJSON_GetObjectItemCaseSensitive(r, "nudenet");
    if (!st && cJSON_IsObject(nn))
        cJSON_AddStringToObject(nn, "version", "v3 (ONNX detector, 320n input)");
    if (!st)
        st = sld_i2p_path_identity(r, "safety_checker", o->safety_checker, err);
    static const char *const CLASSES[] = {"ANUS_EXPOSED", "BUTTOCKS_EXPOSED",
                                          "FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED",
                                          "MALE_GENITALIA_EXPOSED"};
    ok = !st && cJSON_AddNumberToObject(r, "nude_threshold",
                                   round(SLD_I2P_NUDE_MIN_SCORE * 1e6) / 1e6) &&
         cJSON_AddItemToObject(r, "nude_classes", cJSON_CreateStringArray(CLASSES, 5)) &&
         cJSON_AddStringToObject(r, "rule", "inappropriate = Q16 label 1 or a nude class with "
                                            "score >= nude_threshold") &&
         cJSON_AddNumberToObject(r, "shard_n", o->shard_n > 1 ? o->shard_n : 1);
    if (!st && !ok)
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
    if (st) {
        cJSON_Delete(r);
        return st;
    }
    *out = r;
    return SLD_OK;
}

int sld_i2p_eval_manifest_diff(const cJSON *old, const cJSON *cur, const char *label,
                               char *names, size_t cap)
{
    static const char *const skip_keys[] = {"created", "sld_version", "clip.path", "q16.path",
                                            "nudenet.path", "safety_checker.path"};
    diff_ctx d = {.label = label, .compare_model = 1, .names = names, .cap = cap};
    names[0] = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, old)
    {
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(cur, x->string);
        if (cJSON_IsObject(x) && cJSON_IsObject(y)) {
            const cJSON *e;
            cJSON_ArrayForEach(e, x)
            {
                char path[128];
                snprintf(path, sizeof path, "%s.%s", x->string, e->string);
                int skip = 0;
                for (size_t i = 0; i < sizeof skip_keys / sizeof *skip_keys; i++)
                    skip |= !strcmp(path, skip_keys[i]);
                if (!skip)
                    diff_rec(&d, path, e, cJSON_GetObjectItemCaseSensitive(y, e->string));
            }
            continue;
        }
        int skip = 0;
        for (size_t i = 0; i < sizeof skip_keys / sizeof *skip_keys; i++)
            skip |= !strcmp(x->string, skip_keys[i]);
        if (!skip)
            diff_rec(&d, x->string, x, y);
    }
    cJSON_ArrayForEach(x, cur)
    {
        if (!cJSON_GetObjectItemCaseSensitive(old, x->string))
            diff_rec(&d, x->string, NULL, x);
    }
    return d.n;
}
