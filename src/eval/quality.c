/*
 * quality.c — the public FID / KID / CLIP-score entry points of sld.h
 * (sld_metrics_features, sld_metrics_fid, sld_metrics_clip_score): image
 * folders, feature files and statistics in, numbers and files out. The
 * numerics live in fid.c, clip_score.c and model/inception.c.
 *
 * Invariants: nothing is written unless every input was read and every
 * number computed; writes are atomic (no partial file at the destination).
 */
#include "sld.h"

#include "eval/clip_score.h"
#include "eval/fid.h"
#include "io/jsonl.h"
#include "io/npz.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "model/inception.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FEAT_CHUNK 8
#define MAX_IMAGES 10000000L

/* ---- image folders ---------------------------------------------------------- */

typedef struct {
    char **names; /* file names, sorted */
    long n;
} name_list;

static void names_free(name_list *l)
{
    for (long i = 0; i < l->n; i++)
        sld_free(l->names[i]);
    sld_free(l->names);
    l->names = NULL;
    l->n = 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_ext(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext);
    return n > e && !strcasecmp(name + n - e, ext);
}

/* The stem of a file name: without its last extension (a new string). */
static char *stem_of(const char *name)
{
    char *s = sld_strdup(name);
    char *dot = s ? strrchr(s, '.') : NULL;
    if (dot)
        *dot = 0;
    return s;
}

/* The PNG and JPEG files of dir (.png, .jpg, .jpeg in any case), sorted by
 * name, leaving out SLD maps (*.map.png, logged). Other image files
 * (pytorch-fid also reads BMP, TIFF, WebP, ...) are an error: skipping them
 * would change the FID. */
static sld_status list_images(const char *dir, name_list *out, sld_error *err)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d)
        return sld_err(err, SLD_ERR_IO, "%s: cannot open the image folder: %s", dir,
                       strerror(errno));
    static const char *const other[] = {".bmp", ".pgm", ".ppm", ".tif", ".tiff",
                                        ".webp", ".gif", ".jp2", ".heic", ".avif"};
    sld_status st = SLD_OK;
    long cap = 0, n_maps = 0;
    char **stems = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        for (size_t k = 0; k < sizeof other / sizeof *other; k++)
            if (has_ext(e->d_name, other[k])) {
                st = sld_err(err, SLD_ERR_INVALID_ARG,
                             "%s/%s: only PNG and JPEG images are read; convert the folder (or "
                             "use a pytorch-fid .npz of it as the reference)",
                             dir, e->d_name);
                goto done;
            }
        if (!sld_image_name_ok(e->d_name))
            continue;
        if (has_ext(e->d_name, ".map.png")) { /* SLD maps beside i2p images (--sld-maps) */
            n_maps++;
            continue;
        }
        if (out->n == cap) {
            cap = cap ? 2 * cap : 256;
            char **p = cap <= MAX_IMAGES ? sld_realloc(out->names, (size_t)cap * sizeof *p) : NULL;
            if (!p) {
                st = sld_err(err, SLD_ERR_NOMEM, "%s: too many images", dir);
                goto done;
            }
            out->names = p;
        }
        if (!(out->names[out->n] = sld_strdup(e->d_name))) {
            st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", dir);
            goto done;
        }
        out->n++;
    }
    if (n_maps)
        sld_log(SLD_LOG_WARN, "%s: left out %ld SLD map%s (*.map.png, written by i2p generate "
                "--sld-maps): they are not images of the study", dir, n_maps, n_maps > 1 ? "s" : "");
    if (!out->n) {
        st = sld_err(err, SLD_ERR_INVALID_ARG, "%s: no PNG or JPEG images in this folder", dir);
        goto done;
    }
    qsort(out->names, (size_t)out->n, sizeof *out->names, cmp_str);
    /* two names with one stem ("a.png", "a.PNG", "a.jpg") would share a
     * tensor name */
    if (!(stems = sld_calloc((size_t)out->n, sizeof *stems))) {
        st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", dir);
        goto done;
    }
    for (long i = 0; i < out->n; i++)
        if (!(stems[i] = stem_of(out->names[i]))) {
            st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", dir);
            goto done;
        }
    qsort(stems, (size_t)out->n, sizeof *stems, cmp_str);
    for (long i = 1; i < out->n; i++)
        if (!strcmp(stems[i - 1], stems[i])) {
            st = sld_err(err, SLD_ERR_INVALID_ARG,
                         "%s: two images have the name stem '%s' (features are named by stem)",
                         dir, stems[i]);
            goto done;
        }
done:
    if (stems)
        for (long i = 0; i < out->n; i++)
            sld_free(stems[i]);
    sld_free(stems);
    closedir(d);
    if (st)
        names_free(out);
    return st;
}

/* pool3 features of every image in dir: *feats [n,2048] (caller frees). */
static sld_status folder_features(const char *inception, const char *dir, int n_threads,
                                  sld_metrics_progress_fn progress, void *user, name_list *names,
                                  float **feats, sld_error *err)
{
    *feats = NULL;
    if (!inception)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "%s is an image folder: its features need the Inception weights "
                       "(--inception pt_inception-2015-12-05-6726825d.pth)",
                       dir);
    sld_status st = list_images(dir, names, err);
    if (st)
        return st;
    sld_threads_set(n_threads);
    sld_inception *m = NULL;
    const size_t in_sz = (size_t)3 * SLD_INCEPTION_SIZE * SLD_INCEPTION_SIZE;
    float *x = sld_malloc(FEAT_CHUNK * in_sz * sizeof *x);
    float *f = sld_malloc((size_t)names->n * SLD_INCEPTION_DIM * sizeof *f);
    if (!x || !f) {
        st = sld_err(err, SLD_ERR_NOMEM, "out of memory for the features of %ld images",
                     names->n);
        goto done;
    }
    if ((st = sld_inception_open(&m, inception, err)))
        goto done;
    for (long i0 = 0; i0 < names->n; i0 += FEAT_CHUNK) {
        int b = names->n - i0 < FEAT_CHUNK ? (int)(names->n - i0) : FEAT_CHUNK;
        for (int i = 0; i < b; i++) {
            char *p = sld_path_join(dir, names->names[i0 + i]);
            uint8_t *rgb = NULL;
            int w, h;
            st = p ? sld_image_read(p, &rgb, &w, &h, err)
                   : sld_err(err, SLD_ERR_NOMEM, "out of memory");
            sld_free(p);
            if (st)
                goto done;
            sld_inception_prep(rgb, w, h, x + (size_t)i * in_sz);
            sld_free(rgb);
        }
        if ((st = sld_inception_forward(m, x, b, f + (size_t)i0 * SLD_INCEPTION_DIM, NULL, err)))
            goto done;
        if (progress && progress(i0 + b, names->n, user)) {
            st = sld_err(err, SLD_ERR_CANCELLED, "feature extraction cancelled");
            goto done;
        }
    }
    *feats = f;
    f = NULL;
done:
    sld_inception_free(m);
    sld_free(x);
    sld_free(f);
    if (st)
        names_free(names);
    return st;
}

/* ---- features ------------------------------------------------------------------ */

static sld_status write_stats(const char *path, const sld_fid_stats *s, sld_error *err)
{
    const char *keys[2] = {"mu", "sigma"};
    const double *data[2] = {s->mu, s->sigma};
    const int nd[2] = {1, 2};
    const int64_t s1[1] = {s->D}, s2[2] = {s->D, s->D};
    const int64_t *shapes[2] = {s1, s2};
    return sld_npz_write(path, 2, keys, data, nd, shapes, err);
}

sld_status sld_metrics_features(const sld_features_opts *o, long *n_images, sld_error *err)
{
    if (n_images)
        *n_images = 0;
    if (!o || !o->images || (!o->out && !o->stats))
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "features: need an image folder and an output (features and/or stats)");
    name_list names;
    float *f = NULL;
    sld_st_out *t = NULL;
    sld_fid_stats s = {0};
    sld_status st = folder_features(o->inception, o->images, o->n_threads, o->progress,
                                    o->progress_user, &names, &f, err);
    if (st)
        return st;
    const long n = names.n;
    if ((st = sld_features_check(f, n, SLD_INCEPTION_DIM, o->images, err)))
        goto done;
    if (o->stats && (st = sld_fid_stats_compute(f, n, SLD_INCEPTION_DIM, &s, err)))
        goto done;
    if (o->out) {
        if (!(t = sld_calloc((size_t)n, sizeof *t))) {
            st = sld_err(err, SLD_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (long i = 0; i < n; i++) {
            *strrchr(names.names[i], '.') = 0; /* the stem */
            t[i] = (sld_st_out){.name = names.names[i], .dtype = SLD_DT_F32, .ndim = 1,
                                .shape = {SLD_INCEPTION_DIM},
                                .data = f + (size_t)i * SLD_INCEPTION_DIM};
        }
        const char *meta[6] = {"features", "pool3 of pytorch-fid's FID Inception v3",
                               "preprocessing",
                               "PIL RGB, bilinear 299x299 (align_corners=False, no "
                               "antialias), 2x-1",
                               "inception", o->inception};
        if ((st = sld_st_write(o->out, t, (int)n, meta, 3, err)))
            goto done;
    }
    if (o->stats && (st = write_stats(o->stats, &s, err)))
        goto done;
    if (n_images)
        *n_images = n;
done:
    sld_free(t);
    sld_fid_stats_free(&s);
    sld_free(f);
    names_free(&names);
    return st;
}

/* ---- FID / KID ---------------------------------------------------------------- */

void sld_fid_opts_default(sld_fid_opts *o)
{
    memset(o, 0, sizeof *o);
    o->kid_subsets = SLD_KID_SUBSETS;
    o->kid_subset_size = SLD_KID_SUBSET_SIZE;
    o->kid_seed = SLD_KID_SEED;
}

/* One side of a comparison: features [N,D] or, from an .npz, statistics. */
typedef struct {
    float *feats;
    long N;
    int D;
    sld_fid_stats stats;
    bool has_stats;
} side;

static void side_free(side *s)
{
    sld_free(s->feats);
    sld_fid_stats_free(&s->stats);
}

static sld_status load_npz(const char *path, side *s, sld_error *err)
{
    sld_npz *z;
    sld_npy mu = {0}, sigma = {0};
    sld_status st = sld_npz_open(&z, path, err);
    if (st)
        return st;
    if ((st = sld_npz_get(z, "mu", &mu, err)) || (st = sld_npz_get(z, "sigma", &sigma, err)))
        goto done;
    if (mu.ndim != 1 || sigma.ndim != 2 || sigma.shape[0] != mu.shape[0] ||
        sigma.shape[1] != mu.shape[0] || mu.shape[0] < 1 || mu.shape[0] > 65536) {
        st = sld_err(err, SLD_ERR_FORMAT,
                     "%s: expected mu [D] and sigma [D,D] (pytorch-fid statistics), got %d-D "
                     "mu and %d-D sigma",
                     path, mu.ndim, sigma.ndim);
        goto done;
    }
    s->D = (int)mu.shape[0];
    s->stats = (sld_fid_stats){.D = s->D, .N = 0, .mu = mu.data, .sigma = sigma.data};
    s->has_stats = true;
    mu.data = sigma.data = NULL;
done:
    sld_npy_free(&mu);
    sld_npy_free(&sigma);
    sld_npz_close(z);
    return st;
}

static sld_status load_safetensors(const char *path, side *s, sld_error *err)
{
    sld_st_file *f;
    sld_status st = sld_st_open(&f, path, err);
    if (st)
        return st;
    const sld_st_tensor *t = sld_st_find(f, "features");
    if (t && t->ndim == 2) {
        s->N = (long)t->shape[0];
        s->D = (int)t->shape[1];
        if (!(s->feats = sld_malloc((t->numel ? t->numel : 1) * sizeof(float))))
            st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", path);
        else
            st = sld_st_to_f32(t, s->feats, err);
        goto done;
    }
    /* sld_metrics_features' layout: one [D] tensor per image */
    int n = sld_st_count(f);
    if (n < 1) {
        st = sld_err(err, SLD_ERR_FORMAT, "%s: no tensors (expected 'features' [N,D])", path);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const sld_st_tensor *ti = sld_st_at(f, i);
        if (ti->ndim != 1 || ti->shape[0] < 1) {
            st = sld_err(err, SLD_ERR_FORMAT,
                         "%s: '%s' is not a feature vector; expected a 2-D 'features' [N,D] "
                         "or one [D] tensor per image",
                         path, ti->name);
            goto done;
        }
        if (ti->shape[0] != sld_st_at(f, 0)->shape[0]) {
            st = sld_err(err, SLD_ERR_SHAPE,
                         "%s: features of different widths ('%s' has %lld, '%s' %lld)", path,
                         sld_st_at(f, 0)->name, (long long)sld_st_at(f, 0)->shape[0],
                         ti->name, (long long)ti->shape[0]);
            goto done;
        }
    }
    s->N = n;
    s->D = (int)sld_st_at(f, 0)->shape[0];
    if (!(s->feats = sld_malloc((size_t)n * s->D * sizeof(float)))) {
        st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < n && !st; i++)
        st = sld_st_to_f32(sld_st_at(f, i), s->feats + (size_t)i * s->D, err);
done:
    if (st) {
        sld_free(s->feats);
        s->feats = NULL;
    }
    sld_st_close(f);
    return st;
}

static sld_status load_side(const char *path, const sld_fid_opts *o, side *s, sld_error *err)
{
    memset(s, 0, sizeof *s);
    sld_status st;
    if (sld_path_is_dir(path)) {
        name_list names;
        st = folder_features(o->inception, path, o->n_threads, o->progress, o->progress_user,
                             &names, &s->feats, err);
        if (st)
            return st;
        s->N = names.n;
        s->D = SLD_INCEPTION_DIM;
        names_free(&names);
    } else if (has_ext(path, ".npz")) {
        st = load_npz(path, s, err);
    } else if (has_ext(path, ".safetensors")) {
        st = load_safetensors(path, s, err);
    } else if (!sld_path_exists(path)) {
        return sld_err(err, SLD_ERR_IO, "%s: no such file or folder", path);
    } else {
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "%s: not an image folder, a pytorch-fid .npz or a .safetensors feature "
                       "file",
                       path);
    }
    if (st)
        return st;
    if (s->feats && (st = sld_features_check(s->feats, s->N, s->D, path, err)))
        return st;
    if (!s->has_stats) {
        if ((st = sld_fid_stats_compute(s->feats, s->N, s->D, &s->stats, err)))
            return sld_err_prefix(err, "%s", path);
        s->has_stats = true;
    }
    return SLD_OK;
}

sld_status sld_feature_set_load(const char *path, sld_feature_set *out, sld_error *err)
{
    memset(out, 0, sizeof *out);
    if (sld_path_is_dir(path))
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "%s: a folder; expected a pytorch-fid .npz or a .safetensors feature file",
                       path);
    sld_fid_opts o;
    sld_fid_opts_default(&o);
    side s;
    sld_status st = load_side(path, &o, &s, err);
    if (st) {
        side_free(&s);
        return st;
    }
    *out = (sld_feature_set){.feats = s.feats, .N = s.feats ? s.N : 0, .D = s.D,
                             .stats = s.stats};
    return SLD_OK;
}

void sld_feature_set_free(sld_feature_set *s)
{
    if (!s)
        return;
    sld_free(s->feats);
    sld_fid_stats_free(&s->stats);
    memset(s, 0, sizeof *s);
}

sld_status sld_metrics_fid(const char *a, const char *b, const sld_fid_opts *o,
                           sld_fid_result *out, sld_error *err)
{
    sld_fid_opts def;
    if (!o) {
        sld_fid_opts_default(&def);
        o = &def;
    }
    *out = (sld_fid_result){.fid = NAN, .kid_mean = NAN, .kid_std = NAN};
    side A, B;
    sld_status st = load_side(a, o, &A, err);
    if (st) {
        side_free(&A);
        return st;
    }
    if ((st = load_side(b, o, &B, err)))
        goto done;
    if (A.D != B.D) {
        st = sld_err(err, SLD_ERR_SHAPE,
                     "%s has %d-wide features and %s %d-wide: compare features of the same "
                     "network layer",
                     a, A.D, b, B.D);
        goto done;
    }
    if (o->kid && (!A.feats || !B.feats)) {
        st = sld_err(err, SLD_ERR_INVALID_ARG,
                     "KID needs the features of both sets; %s holds only statistics (mu, "
                     "sigma)",
                     A.feats ? b : a);
        goto done;
    }
    sld_threads_set(o->n_threads);
    /* A side of fewer than D images has a singular covariance of rank < n:
     * the n x n form gives the same distance without two D x D eigenvalue
     * problems (a minute with reference BLAS at D = 2048). FID is symmetric. */
    const side *small = A.feats && A.N < A.D ? &A : NULL;
    if (B.feats && B.N < B.D && (!small || B.N < small->N))
        small = &B;
    if (small)
        st = sld_frechet_distance_sample(small == &A ? &B.stats : &A.stats, small->feats,
                                         small->N, small->D, &out->fid, err);
    else
        st = sld_frechet_distance(&A.stats, &B.stats, &out->fid, err);
    if (st)
        goto done;
    out->n_a = A.feats ? A.N : 0;
    out->n_b = B.feats ? B.N : 0;
    out->dims = A.D;
    if ((out->n_a && out->n_a < 2048) || (out->n_b && out->n_b < 2048))
        sld_log(SLD_LOG_WARN,
                "FID on fewer than 2048 images (%ld and %ld) is biased upwards and not "
                "comparable across sample sizes; prefer KID (--kid)",
                out->n_a, out->n_b);
    if (o->kid)
        st = sld_kid_subsets(A.feats, A.N, B.feats, B.N, A.D, o->kid_subsets,
                             o->kid_subset_size, o->kid_seed, &out->kid_mean, &out->kid_std,
                             NULL, err);
done:
    side_free(&A);
    side_free(&B);
    return st;
}

/* ---- CLIP score ---------------------------------------------------------------- */

typedef struct {
    const char *path;
    char *base;         /* folder of the pairs file */
    cJSON **objs;
    int n, cap;
    sld_error *err;
    sld_status st;
} pairs_ctx;

static int pair_line(const cJSON *obj, int line, void *user)
{
    pairs_ctx *c = user;
    const cJSON *im = cJSON_GetObjectItemCaseSensitive(obj, "image");
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(obj, "prompt");
    if (!cJSON_IsString(im) || !cJSON_IsString(pr) || !im->valuestring[0]) {
        c->st = sld_err(c->err, SLD_ERR_FORMAT,
                        "%s:%d: each line needs string keys \"image\" and \"prompt\"", c->path,
                        line);
        return 1;
    }
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        cJSON **p = cap < 100000000 ? sld_realloc(c->objs, (size_t)cap * sizeof *p) : NULL;
        if (!p) {
            c->st = sld_err(c->err, SLD_ERR_NOMEM, "%s: out of memory", c->path);
            return 1;
        }
        c->objs = p;
        c->cap = cap;
    }
    if (!(c->objs[c->n] = cJSON_Duplicate(obj, 1))) {
        c->st = sld_err(c->err, SLD_ERR_NOMEM, "%s: out of memory", c->path);
        return 1;
    }
    c->n++;
    return 0;
}

void sld_clip_score_result_free(sld_clip_score_result *r)
{
    if (!r)
        return;
    for (int i = 0; r->records && i < r->n; i++)
        free(r->records[i]);
    sld_free(r->records);
    sld_free(r->scores);
    sld_free(r->distances);
    memset(r, 0, sizeof *r);
}

sld_status sld_metrics_clip_score(const char *clip_dir, const char *pairs_jsonl, int n_threads,
                                  sld_clip_score_result *out, sld_error *err)
{
    memset(out, 0, sizeof *out);
    pairs_ctx c = {.path = pairs_jsonl, .err = err};
    sld_clip_scorer *s = NULL;
    float *temb = NULL, *iemb = NULL;
    const char **texts = NULL;
    sld_status st = sld_jsonl_read(pairs_jsonl, 0, pair_line, &c, NULL, err);
    if (!st)
        st = c.st;
    if (st)
        goto done;
    if (!c.n) {
        st = sld_err(err, SLD_ERR_INVALID_ARG, "%s: no image/prompt pairs", pairs_jsonl);
        goto done;
    }
    const char *slash = strrchr(pairs_jsonl, '/');
    c.base = slash ? sld_strdup(pairs_jsonl) : sld_strdup(".");
    if (c.base && slash)
        c.base[slash - pairs_jsonl] = 0;
    if (c.base && slash == pairs_jsonl)
        strcpy(c.base, "/");
    sld_threads_set(n_threads);
    if (!c.base || (st = sld_clip_scorer_open(&s, clip_dir, err)))
        goto done_nomem;
    const int P = sld_clip_scorer_dim(s), n = c.n;
    temb = sld_malloc((size_t)n * P * sizeof *temb);
    iemb = sld_malloc((size_t)P * sizeof *iemb);
    texts = sld_malloc((size_t)n * sizeof *texts);
    out->records = sld_calloc((size_t)n, sizeof *out->records);
    out->scores = sld_malloc((size_t)n * sizeof *out->scores);
    out->distances = sld_malloc((size_t)n * sizeof *out->distances);
    if (!temb || !iemb || !texts || !out->records || !out->scores || !out->distances)
        goto done_nomem;
    for (int i = 0; i < n; i++)
        texts[i] = cJSON_GetObjectItemCaseSensitive(c.objs[i], "prompt")->valuestring;
    if ((st = sld_clip_scorer_text(s, texts, n, temb, NULL, &out->n_truncated, err)))
        goto done;
    if (out->n_truncated)
        sld_log(SLD_LOG_WARN, "%s: %d of %d prompts are longer than 77 tokens and were cut",
                pairs_jsonl, out->n_truncated, n);
    out->n = n;
    double sum = 0, ss = 0, dsum = 0;
    for (int i = 0; i < n; i++) {
        const char *im = cJSON_GetObjectItemCaseSensitive(c.objs[i], "image")->valuestring;
        char *p = im[0] == '/' ? sld_strdup(im) : sld_path_join(c.base, im);
        uint8_t *rgb = NULL;
        int w, h;
        st = p ? sld_image_read(p, &rgb, &w, &h, err) : sld_err(err, SLD_ERR_NOMEM, "out of memory");
        sld_free(p);
        if (!st)
            st = sld_clip_scorer_image(s, rgb, w, h, iemb, err);
        sld_free(rgb);
        if (st) {
            sld_err_prefix(err, "%s: pair %d", pairs_jsonl, i + 1);
            goto done;
        }
        double cs = sld_clip_cos(iemb, temb + (size_t)i * P, P);
        if (isnan(cs)) {
            st = sld_err(err, SLD_ERR_INTERNAL, "%s: pair %d: an embedding is zero or not finite",
                         pairs_jsonl, i + 1);
            goto done;
        }
        out->scores[i] = 100 * cs;
        out->distances[i] = 1 - cs;
        sum += out->scores[i];
        dsum += out->distances[i];
        cJSON_AddNumberToObject(c.objs[i], "score", out->scores[i]);
        cJSON_AddNumberToObject(c.objs[i], "clip_distance", out->distances[i]);
        if (!(out->records[i] = cJSON_PrintUnformatted(c.objs[i])))
            goto done_nomem;
    }
    double mean = sum / n;
    for (int i = 0; i < n; i++)
        ss += (out->scores[i] - mean) * (out->scores[i] - mean);
    out->score = mean > 0 ? mean : 0;
    out->score_std = sqrt(ss / n);
    out->distance = dsum / n;
    goto done;
done_nomem:
    if (!st)
        st = sld_err(err, SLD_ERR_NOMEM, "clip score: out of memory");
done:
    if (st)
        sld_clip_score_result_free(out);
    for (int i = 0; i < c.n; i++)
        cJSON_Delete(c.objs[i]);
    sld_free(c.objs);
    sld_free(c.base);
    sld_free(temb);
    sld_free(iemb);
    sld_free(texts);
    sld_clip_scorer_free(s);
    return st;
}

char *sld_clip_score_result_json(const sld_clip_score_result *r)
{
    cJSON *o = cJSON_CreateObject(), *pairs = cJSON_CreateArray();
    if (!o || !pairs) {
        cJSON_Delete(o);
        cJSON_Delete(pairs);
        return NULL;
    }
    cJSON_AddItemToObject(o, "pairs", pairs);
    for (int i = 0; i < r->n; i++) {
        cJSON *p = cJSON_Parse(r->records[i]);
        if (p)
            cJSON_AddItemToArray(pairs, p);
    }
    cJSON_AddNumberToObject(o, "score", r->score);
    cJSON_AddNumberToObject(o, "score_std", r->score_std);
    cJSON_AddNumberToObject(o, "clip_distance", r->distance);
    cJSON_AddNumberToObject(o, "n", r->n);
    cJSON_AddNumberToObject(o, "truncated", r->n_truncated);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

sld_status sld_text_write(const char *path, const char *text, sld_error *err)
{
    return sld_file_write_atomic(path, text, strlen(text), err);
}
