/*
 * coco.c — COCO captions reader and seeded sample (coco.h).
 */
#include "eval/coco.h"

#include "eval/fid.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t id;
    const char *file_name;
    long first, n; /* its captions: ann[first .. first+n) after sorting */
} img;

typedef struct {
    int64_t image_id, id;
    const char *caption;
} ann;

struct sld_coco_set {
    cJSON *root;
    long n_images;
    long n;
    sld_coco_caption *c;
};

static int cmp_img(const void *a, const void *b)
{
    int64_t x = ((const img *)a)->id, y = ((const img *)b)->id;
    return (x > y) - (x < y);
}

static int cmp_ann(const void *a, const void *b)
{
    const ann *x = a, *y = b;
    if (x->image_id != y->image_id)
        return (x->image_id > y->image_id) - (x->image_id < y->image_id);
    return (x->id > y->id) - (x->id < y->id);
}

/* An integer-valued JSON number that fits int64 (COCO ids are integers). */
static bool get_id(const cJSON *o, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    /* range first: converting an out-of-range double to int64 is undefined */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= -9e15 && v->valuedouble <= 9e15) ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return false;
    *out = (int64_t)v->valuedouble;
    return true;
}

void sld_coco_free(sld_coco_set *s)
{
    if (!s)
        return;
    cJSON_Delete(s->root);
    sld_free(s->c);
    sld_free(s);
}

long sld_coco_count(const sld_coco_set *s) { return s->n; }
long sld_coco_images(const sld_coco_set *s) { return s->n_images; }
const sld_coco_caption *sld_coco_get(const sld_coco_set *s, long i)
{
    return i >= 0 && i < s->n ? &s->c[i] : NULL;
}

sld_status sld_coco_parse(sld_coco_set **out, const char *text, size_t len, const char *name,
                          long limit, uint32_t seed, sld_error *err)
{
    *out = NULL;
    if (limit < 0)
        return sld_err(err, SLD_ERR_INVALID_ARG, "%s: limit %ld is negative", name, limit);
    sld_coco_set *s = sld_calloc(1, sizeof *s);
    img *im = NULL, *kept = NULL;
    ann *an = NULL;
    long *pick = NULL;
    sld_np_rng *rng = NULL;
    sld_status st = SLD_OK;
    if (!s)
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", name);
    s->root = cJSON_ParseWithLength(text, len);
    if (!s->root || !cJSON_IsObject(s->root)) {
        st = sld_err(err, SLD_ERR_FORMAT, "%s: not a JSON object (COCO captions file expected)",
                     name);
        goto done;
    }
    const cJSON *images = cJSON_GetObjectItemCaseSensitive(s->root, "images");
    const cJSON *anns = cJSON_GetObjectItemCaseSensitive(s->root, "annotations");
    if (!cJSON_IsArray(images) || !cJSON_IsArray(anns)) {
        st = sld_err(err, SLD_ERR_FORMAT,
                     "%s: not COCO's captions format (needs \"images\" and \"annotations\" "
                     "arrays, as captions_val2014.json)",
                     name);
        goto done;
    }
    long ni = cJSON_GetArraySize(images), na = cJSON_GetArraySize(anns);
    im = sld_malloc((size_t)(ni ? ni : 1) * sizeof *im);
    an = sld_malloc((size_t)(na ? na : 1) * sizeof *an);
    if (!im || !an) {
        st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    long k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, images)
    {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(e, "file_name");
        if (!cJSON_IsObject(e) || !get_id(e, "id", &im[k].id)) {
            st = sld_err(err, SLD_ERR_FORMAT, "%s: images[%ld] has no integer \"id\"", name, k);
            goto done;
        }
        if (im[k].id < 0 || im[k].id > 4294967295ll) {
            st = sld_err(err, SLD_ERR_FORMAT,
                         "%s: images[%ld]: id %lld is not in [0, 4294967295] (each caption's "
                         "seed is its image id)",
                         name, k, (long long)im[k].id);
            goto done;
        }
        im[k].file_name = cJSON_IsString(fn) ? fn->valuestring : "";
        im[k].first = im[k].n = 0;
        k++;
    }
    qsort(im, (size_t)ni, sizeof *im, cmp_img);
    for (long i = 1; i < ni; i++)
        if (im[i].id == im[i - 1].id) {
            st = sld_err(err, SLD_ERR_FORMAT, "%s: image id %lld appears twice in \"images\"",
                         name, (long long)im[i].id);
            goto done;
        }
    k = 0;
    cJSON_ArrayForEach(e, anns)
    {
        const cJSON *cap = cJSON_GetObjectItemCaseSensitive(e, "caption");
        if (!cJSON_IsObject(e) || !get_id(e, "image_id", &an[k].image_id) ||
            !get_id(e, "id", &an[k].id) || !cJSON_IsString(cap)) {
            st = sld_err(err, SLD_ERR_FORMAT,
                         "%s: annotations[%ld] needs integer \"id\", \"image_id\" and a string "
                         "\"caption\"",
                         name, k);
            goto done;
        }
        const char *c0 = cap->valuestring;
        long bad = sld_utf8_invalid_at(c0, strlen(c0));
        if (bad >= 0) {
            st = sld_err(err, SLD_ERR_FORMAT,
                         "%s: annotations[%ld] (id %lld): the caption is not valid UTF-8 (byte "
                         "0x%02x at offset %ld)",
                         name, k, (long long)an[k].id, (uint8_t)c0[bad], bad);
            goto done;
        }
        if (!c0[strspn(c0, " \t\r\n\f\v")]) {
            st = sld_err(err, SLD_ERR_FORMAT,
                         "%s: annotations[%ld] (id %lld, image %lld): empty caption", name, k,
                         (long long)an[k].id, (long long)an[k].image_id);
            goto done;
        }
        an[k].caption = c0;
        k++;
    }
    qsort(an, (size_t)na, sizeof *an, cmp_ann);
    /* attach each run of captions to its image */
    for (long i = 0; i < na;) {
        long j = i;
        while (j < na && an[j].image_id == an[i].image_id)
            j++;
        img key = {.id = an[i].image_id};
        img *hit = bsearch(&key, im, (size_t)ni, sizeof *im, cmp_img);
        if (!hit) {
            st = sld_err(err, SLD_ERR_FORMAT,
                         "%s: annotation %lld names image %lld, which is not in \"images\"", name,
                         (long long)an[i].id, (long long)an[i].image_id);
            goto done;
        }
        hit->first = i;
        hit->n = j - i;
        i = j;
    }
    kept = sld_malloc((size_t)(ni ? ni : 1) * sizeof *kept);
    if (!kept) {
        st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    long nk = 0;
    for (long i = 0; i < ni; i++)
        if (im[i].n)
            kept[nk++] = im[i];
    s->n_images = nk;
    if (!nk) {
        st = sld_err(err, SLD_ERR_FORMAT, "%s: no image has a caption", name);
        goto done;
    }
    long N = limit ? limit : nk;
    if (N > nk) {
        st = sld_err(err, SLD_ERR_INVALID_ARG,
                     "%s: a sample of %ld captions needs %ld captioned images; the file has %ld "
                     "(lower --limit, or 0 for all of them)",
                     name, N, N, nk);
        goto done;
    }
    pick = sld_malloc((size_t)N * sizeof *pick);
    s->c = sld_malloc((size_t)N * sizeof *s->c);
    if (!pick || !s->c) {
        st = sld_err(err, SLD_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    if ((st = sld_np_rng_new(&rng, seed, err)) || (st = sld_np_rng_choice(rng, nk, N, pick, err)))
        goto done;
    for (long i = 0; i < N; i++) {
        const img *m = &kept[pick[i]];
        long j = 0; /* randint(n) */
        if (m->n > 1 && (st = sld_np_rng_randint(rng, m->n, &j, err)))
            goto done;
        const ann *a = &an[m->first + j];
        s->c[i] = (sld_coco_caption){.image_id = m->id, .caption_id = a->id,
                                     .file_name = m->file_name, .caption = a->caption};
    }
    s->n = N;
    *out = s;
    s = NULL;
done:
    sld_np_rng_free(rng);
    sld_free(pick);
    sld_free(kept);
    sld_free(im);
    sld_free(an);
    sld_coco_free(s);
    return st;
}

sld_status sld_coco_load(sld_coco_set **out, const char *path, long limit, uint32_t seed,
                         sld_error *err)
{
    *out = NULL;
    char *buf;
    size_t len;
    sld_status st = sld_file_read(path, (size_t)1 << 30, &buf, &len, err);
    if (st)
        return st;
    st = sld_coco_parse(out, buf, len, path, limit, seed, err);
    sld_free(buf);
    return st;
}
