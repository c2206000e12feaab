/* identity.c — a model's content identity (sld_model_sha256, the A1111-style
 * short sld_model_hash) and the list of files it covers (pipeline/model.h
 * says which and why). Hashing reads every listed file once; the result is
 * cached in the model under a mutex, so concurrent callers hash once. */
#include "core/core.h"
#include "ops/packed.h"
#include "pipeline/model.h"

#if defined(__has_include)
#if __has_include("sld_build_version.h")
#include "sld_build_version.h" /* written by the Makefile: SLD_GIT_DESCRIBE */
#endif
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sld_model_files_free(sld_model_file *f, int n)
{
    if (!f)
        return;
    for (int i = 0; i < n; i++) {
        sld_free(f[i].rel);
        sld_free(f[i].path);
    }
    sld_free(f);
}

typedef struct {
    sld_model_file *v;
    int n, cap;
} file_list;

static int list_add(file_list *l, const char *rel, const char *path)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].rel, rel))
            return 0;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        sld_model_file *nv = sld_realloc(l->v, (size_t)cap * sizeof *nv);
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = cap;
    }
    sld_model_file *f = &l->v[l->n];
    memset(f, 0, sizeof *f);
    f->rel = sld_strdup(rel);
    f->path = sld_strdup(path);
    if (!f->rel || !f->path) {
        sld_free(f->rel);
        sld_free(f->path);
        return -1;
    }
    l->n++;
    return 0;
}

/* Adds dir/rel as "<prefix>rel" when it exists. */
static int add_if_exists(file_list *l, const char *dir, const char *rel, const char *prefix)
{
    char *p = sld_path_join(dir, rel);
    if (!p)
        return -1;
    int r = 0;
    if (sld_path_exists(p) && !sld_path_is_dir(p)) {
        char name[512];
        snprintf(name, sizeof name, "%s%s", prefix, rel);
        r = list_add(l, name, p);
    }
    sld_free(p);
    return r;
}

static const char *const CONFIG_FILES[] = {
    "text_encoder/config.json",      "unet/config.json",
    "vae/config.json",               "scheduler/scheduler_config.json",
    "tokenizer/vocab.json",          "tokenizer/merges.txt",
    "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json"};

static int cmp_rel(const void *a, const void *b)
{
    return strcmp(((const sld_model_file *)a)->rel, ((const sld_model_file *)b)->rel);
}

sld_status sld_model_files_list(const sld_model *m, sld_model_file **out, int *n,
                                sld_error *err)
{
    *out = NULL;
    *n = 0;
    file_list l = {0};
    int bad = 0;
    int folder = sld_path_is_dir(m->path);
    size_t dl = strlen(m->path);
    while (dl > 1 && m->path[dl - 1] == '/')
        dl--;
    for (int i = 0; i < m->n_files && !bad; i++) {
        const char *p = sld_st_path(m->files[i]);
        const char *rel = p;
        if (folder && strlen(p) > dl && !strncmp(p, m->path, dl) && p[dl] == '/')
            rel = p + dl + 1;
        else if (!folder) {
            const char *s = strrchr(p, '/');
            rel = s ? s + 1 : p;
        }
        bad = list_add(&l, rel, p) != 0;
    }
    size_t nc = sizeof CONFIG_FILES / sizeof *CONFIG_FILES;
    for (size_t i = 0; i < nc && !bad; i++) {
        if (folder)
            bad = add_if_exists(&l, m->path, CONFIG_FILES[i], "") != 0;
        else if (m->opts.config_dir)
            bad = add_if_exists(&l, m->opts.config_dir, CONFIG_FILES[i], "config/") != 0;
    }
    if (bad) {
        sld_model_files_free(l.v, l.n);
        return sld_err(err, SLD_ERR_NOMEM, "out of memory");
    }
    qsort(l.v, (size_t)l.n, sizeof *l.v, cmp_rel);
    *out = l.v;
    *n = l.n;
    return SLD_OK;
}

sld_status sld_model_files_hash(sld_model_file *f, int n, sld_error *err)
{
    for (int i = 0; i < n; i++) {
        if (f[i].sha256[0])
            continue;
        sld_status st = sld_sha256_file(f[i].path, f[i].sha256, err);
        if (st)
            return st;
    }
    return SLD_OK;
}

void sld_model_identity_of(const sld_model_file *f, int n, char hex[65])
{
    if (n == 1) {
        memcpy(hex, f[0].sha256, 65);
        return;
    }
    sld_sha256 s;
    sld_sha256_init(&s);
    for (int i = 0; i < n; i++) {
        sld_sha256_update(&s, f[i].sha256, 64);
        sld_sha256_update(&s, "  ", 2);
        sld_sha256_update(&s, f[i].rel, strlen(f[i].rel));
        sld_sha256_update(&s, "\n", 1);
    }
    uint8_t d[32];
    sld_sha256_final(&s, d);
    sld_sha256_hex(d, hex);
}

void sld_model_files_recall(const sld_model *cm, sld_model_file *f, int n)
{
    sld_model *m = (sld_model *)cm;
    pthread_mutex_lock(&m->hash_lock);
    for (int i = 0; i < n; i++)
        for (int j = 0; !f[i].sha256[0] && j < m->n_file_hashes; j++)
            if (!strcmp(m->file_hashes[j].rel, f[i].rel))
                memcpy(f[i].sha256, m->file_hashes[j].sha256, 65);
    pthread_mutex_unlock(&m->hash_lock);
}

void sld_model_files_remember(const sld_model *cm, const sld_model_file *f, int n)
{
    sld_model *m = (sld_model *)cm;
    pthread_mutex_lock(&m->hash_lock);
    if (!m->file_hashes) {
        sld_model_file *c = sld_calloc((size_t)(n ? n : 1), sizeof *c);
        int k = 0, ok = c != NULL;
        for (int i = 0; ok && i < n; i++) {
            if (!f[i].sha256[0])
                continue;
            c[k].rel = sld_strdup(f[i].rel);
            c[k].path = sld_strdup(f[i].path);
            memcpy(c[k].sha256, f[i].sha256, 65);
            ok = c[k].rel && c[k].path;
            k++;
        }
        if (ok) {
            m->file_hashes = c;
            m->n_file_hashes = k;
        } else {
            sld_model_files_free(c, k);
        }
    }
    pthread_mutex_unlock(&m->hash_lock);
}

static void set_locked(sld_model *m, const char hex[65])
{
    memcpy(m->sha256, hex, 65);
    memcpy(m->short_hash, hex, 10);
    m->short_hash[10] = 0;
    m->hash_state = 1;
}

void sld_model_identity_set(const sld_model *cm, const char hex[65])
{
    sld_model *m = (sld_model *)cm; /* the cache is the only mutable part */
    pthread_mutex_lock(&m->hash_lock);
    set_locked(m, hex);
    pthread_mutex_unlock(&m->hash_lock);
}

const char *sld_model_sha256(const sld_model *cm)
{
    if (!cm)
        return "";
    sld_model *m = (sld_model *)cm;
    pthread_mutex_lock(&m->hash_lock);
    int todo = m->hash_state == 0;
    pthread_mutex_unlock(&m->hash_lock);
    if (todo) {
        /* Hash outside the lock (recall/remember take it); two first callers
         * at once may both hash, and agree. */
        sld_model_file *f;
        int n;
        sld_error err;
        double t0 = sld_time_now();
        int bad = sld_model_files_list(m, &f, &n, &err) != SLD_OK;
        if (!bad) {
            sld_model_files_recall(m, f, n);
            bad = sld_model_files_hash(f, n, &err) != SLD_OK;
        }
        if (!bad)
            sld_model_files_remember(m, f, n);
        pthread_mutex_lock(&m->hash_lock);
        if (bad) {
            sld_log(SLD_LOG_WARN, "%s: cannot compute the model hash: %s", m->name, err.msg);
            m->hash_state = -1;
        } else {
            char hex[65];
            sld_model_identity_of(f, n, hex);
            set_locked(m, hex);
            sld_log(SLD_LOG_INFO, "%s: model hash %s (%d files, %.2f s)", m->name, hex, n,
                    sld_time_now() - t0);
        }
        sld_model_files_free(f, n);
    } else {
        pthread_mutex_lock(&m->hash_lock);
    }
    const char *r = m->hash_state == 1 ? m->sha256 : "";
    pthread_mutex_unlock(&m->hash_lock);
    return r;
}

const char *sld_model_precision_name(const sld_model *m)
{
    return sld_pack_precision(m->opts.precision) == SLD_PREC_BF16 ? "bf16" : "fp32";
}

const char *sld_model_conv_algo_name(const sld_model *m)
{
    bool wino = sld_pack_precision(m->opts.precision) == SLD_PREC_FP32 &&
                m->opts.conv_algo == SLD_CONV_AUTO && sld_pack_winograd_available();
    return wino ? "winograd" : "direct";
}

const char *sld_model_hash(const sld_model *m)
{
    const char *full = sld_model_sha256(m);
    return full[0] ? ((const sld_model *)m)->short_hash : "";
}

#if defined(SLD_GIT_DESCRIBE)
#define VERSION_FULL (SLD_GIT_DESCRIBE[0] ? SLD_VERSION " (" SLD_GIT_DESCRIBE ")" : SLD_VERSION)
#else
#define VERSION_FULL SLD_VERSION
#endif

const char *sld_version(void) { return VERSION_FULL; }
