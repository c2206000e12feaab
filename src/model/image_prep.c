/*
 * image_prep.c — CLIPImageProcessor preprocessing and a bit-exact
 * re-implementation of Pillow's resampling (libImaging/Resample.c, as of
 * Pillow 9.x) for 8-bit images, which the processor uses for its resize.
 *
 * Pillow's algorithm, which we follow step by step because every detail
 * moves output levels:
 *  - per axis, scale = in/out; filterscale = max(scale, 1) (antialiasing:
 *    when downscaling the kernel is stretched by the ratio); support =
 *    filter_support * filterscale; ksize = 2*ceil(support) + 1;
 *  - output pixel i has centre c = (i + 0.5) * scale, source range
 *    [(int)(c - support + 0.5), (int)(c + support + 0.5)) clipped to the
 *    image, weights filter((x - c + 0.5) / filterscale) in double,
 *    normalised to sum 1;
 *  - weights become fixed point with 22 fractional bits, rounded away from
 *    zero; each output = clip8((2^21 + sum v*k) >> 22);
 *  - the horizontal pass runs first (only over the source rows the vertical
 *    pass will read) into an 8-bit image, then the vertical pass; a pass is
 *    skipped when that axis keeps its size.
 */
#include "model/image_prep.h"

#include <math.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

/* ---- Pillow's filters --------------------------------------------------- */

static double filter_box(double x)
{
    return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0;
}

static double filter_bilinear(double x)
{
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double filter_hamming(double x)
{
    if (x < 0.0)
        x = -x;
    if (x == 0.0)
        return 1.0;
    if (x >= 1.0)
        return 0.0;
    x = x * M_PI;
    /* Pillow writes the constants as float literals. */
    return sin(x) / x * (0.54f + 0.46f * cos(x));
}

static double filter_bicubic(double x)
{
    /* Keys' cubic convolution with a = -0.5. */
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double sinc(double x)
{
    if (x == 0.0)
        return 1.0;
    x = x * M_PI;
    return sin(x) / x;
}

static double filter_lanczos(double x)
{
    return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0;
}

typedef struct {
    double (*fn)(double);
    double support;
} pil_filter;

static bool pick_filter(int id, pil_filter *f)
{
    switch (id) {
    case SLD_PIL_BOX: *f = (pil_filter){filter_box, 0.5}; return true;
    case SLD_PIL_BILINEAR: *f = (pil_filter){filter_bilinear, 1.0}; return true;
    case SLD_PIL_HAMMING: *f = (pil_filter){filter_hamming, 1.0}; return true;
    case SLD_PIL_BICUBIC: *f = (pil_filter){filter_bicubic, 2.0}; return true;
    case SLD_PIL_LANCZOS: *f = (pil_filter){filter_lanczos, 3.0}; return true;
    default: return false;
    }
}

/* Fixed-point coefficients for one axis: bounds[2i] = first source index,
 * bounds[2i+1] = count; kk[i*ksize + j]. Returns ksize, or 0 on OOM. */
static int precompute(int in_size, int out_size, const pil_filter *flt, int **bounds_out,
                      int32_t **kk_out)
{
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = flt->support * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *w = sld_malloc((size_t)ksize * sizeof(double));
    int *bounds = sld_malloc((size_t)out_size * 2 * sizeof(int));
    int32_t *kk = sld_calloc((size_t)out_size * (size_t)ksize, sizeof(int32_t));
    if (!w || !bounds || !kk) {
        sld_free(w);
        sld_free(bounds);
        sld_free(kk);
        return 0;
    }
    for (int i = 0; i < out_size; i++) {
        double center = (i + 0.5) * scale, ss = 1.0 / filterscale, ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            w[x] = flt->fn((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        for (int x = 0; x < xmax; x++) {
            double k = ww != 0.0 ? w[x] / ww : w[x];
            kk[(size_t)i * ksize + x] = k < 0 ? (int32_t)(-0.5 + k * (1 << PRECISION_BITS))
                                              : (int32_t)(0.5 + k * (1 << PRECISION_BITS));
        }
        bounds[2 * i] = xmin;
        bounds[2 * i + 1] = xmax;
    }
    sld_free(w);
    *bounds_out = bounds;
    *kk_out = kk;
    return ksize;
}

static inline uint8_t clip8(int64_t v)
{
    if (v >= ((int64_t)1 << PRECISION_BITS << 8))
        return 255;
    if (v <= 0)
        return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

sld_status sld_resize_pil_u8(const uint8_t *src, int w, int h, int ch, uint8_t *dst, int ow,
                             int oh, int filter, sld_error *err)
{
    pil_filter flt;
    if (w < 1 || h < 1 || ow < 1 || oh < 1 || ch < 1 || ch > 4)
        return sld_err(err, SLD_ERR_INVALID_ARG, "resize: bad sizes %dx%dx%d -> %dx%d", w, h,
                       ch, ow, oh);
    if (!pick_filter(filter, &flt))
        return sld_err(err, SLD_ERR_UNSUPPORTED,
                       "resize: resample filter %d is not supported (1 lanczos, 2 bilinear, 3 "
                       "bicubic, 4 box, 5 hamming)",
                       filter);
    if (w == ow && h == oh) {
        memcpy(dst, src, (size_t)w * h * ch);
        return SLD_OK;
    }
    int *bh = NULL, *bv = NULL;
    int32_t *kh = NULL, *kv = NULL;
    uint8_t *tmp = NULL;
    int ksh = precompute(w, ow, &flt, &bh, &kh);
    int ksv = precompute(h, oh, &flt, &bv, &kv);
    sld_status st = SLD_OK;
    if (!ksh || !ksv) {
        st = sld_err(err, SLD_ERR_NOMEM, "resize: out of memory");
        goto done;
    }
    /* Source rows the vertical pass reads. */
    int y_first = bv[0], y_last = bv[2 * (oh - 1)] + bv[2 * (oh - 1) + 1];
    const uint8_t *vin = src; /* input of the vertical pass */
    int vin_w = w, vin_y0 = 0;
    if (ow != w) {
        int rows = y_last - y_first;
        if (oh == h) { /* no vertical pass: resample every row */
            y_first = 0;
            rows = h;
        }
        tmp = sld_malloc((size_t)ow * (size_t)rows * (size_t)ch);
        if (!tmp) {
            st = sld_err(err, SLD_ERR_NOMEM, "resize: out of memory");
            goto done;
        }
        for (int y = 0; y < rows; y++) {
            const uint8_t *row = src + (size_t)(y + y_first) * w * ch;
            uint8_t *orow = tmp + (size_t)y * ow * ch;
            for (int x = 0; x < ow; x++) {
                const int32_t *k = kh + (size_t)x * ksh;
                int x0 = bh[2 * x], n = bh[2 * x + 1];
                for (int c = 0; c < ch; c++) {
                    int64_t s = 1 << (PRECISION_BITS - 1);
                    for (int j = 0; j < n; j++)
                        s += (int64_t)row[(size_t)(x0 + j) * ch + c] * k[j];
                    orow[(size_t)x * ch + c] = clip8(s);
                }
            }
        }
        if (oh == h) {
            memcpy(dst, tmp, (size_t)ow * oh * ch);
            goto done;
        }
        vin = tmp;
        vin_w = ow;
        vin_y0 = y_first;
    }
    for (int y = 0; y < oh; y++) {
        const int32_t *k = kv + (size_t)y * ksv;
        int y0 = bv[2 * y] - vin_y0, n = bv[2 * y + 1];
        uint8_t *orow = dst + (size_t)y * ow * ch;
        for (int x = 0; x < ow * ch; x++) {
            int64_t s = 1 << (PRECISION_BITS - 1);
            for (int j = 0; j < n; j++)
                s += (int64_t)vin[(size_t)(y0 + j) * vin_w * ch + x] * k[j];
            orow[x] = clip8(s);
        }
    }
done:
    sld_free(tmp);
    sld_free(bh);
    sld_free(bv);
    sld_free(kh);
    sld_free(kv);
    return st;
}

/* ---- CLIPImageProcessor ----------------------------------------------- */

static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

void sld_image_prep_default(sld_image_prep *p, int size)
{
    memset(p, 0, sizeof *p);
    p->do_resize = 1;
    p->shortest_edge = size;
    p->resample = SLD_PIL_BICUBIC;
    p->do_center_crop = 1;
    p->crop_h = p->crop_w = size;
    p->do_rescale = 1;
    p->rescale_factor = 1.0 / 255.0;
    p->do_normalize = 1;
    memcpy(p->mean, clip_mean, sizeof p->mean);
    memcpy(p->std, clip_std, sizeof p->std);
}

static sld_status read_triple(const sld_json *j, const char *key, float out[3], sld_error *err)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j->root, key);
    if (!a || cJSON_IsNull(a))
        return SLD_OK;
    if (cJSON_IsNumber(a)) { /* a single value applies to every channel */
        out[0] = out[1] = out[2] = (float)a->valuedouble;
        return SLD_OK;
    }
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 3)
        return sld_err(err, SLD_ERR_CONFIG, "%s: '%s' must be a list of 3 numbers", j->path, key);
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(v))
            return sld_err(err, SLD_ERR_CONFIG, "%s: '%s'[%d] is not a number", j->path, key, i);
        out[i] = (float)v->valuedouble;
    }
    return SLD_OK;
}

static sld_status read_int_node(const sld_json *j, const cJSON *node, const char *key, int *out,
                                sld_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(node, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble)
        return sld_err(err, SLD_ERR_CONFIG, "%s: '%s' must be an integer", j->path, key);
    *out = (int)v->valuedouble;
    return SLD_OK;
}

sld_status sld_image_prep_from_json(sld_image_prep *p, const sld_json *j, sld_error *err)
{
    sld_image_prep_default(p, 224);
    sld_status st;
    if ((st = sld_json_bool_opt(j, NULL, "do_resize", 1, &p->do_resize, err)) ||
        (st = sld_json_int_opt(j, NULL, "resample", SLD_PIL_BICUBIC, &p->resample, err)) ||
        (st = sld_json_bool_opt(j, NULL, "do_center_crop", 1, &p->do_center_crop, err)) ||
        (st = sld_json_bool_opt(j, NULL, "do_rescale", 1, &p->do_rescale, err)) ||
        (st = sld_json_num_opt(j, NULL, "rescale_factor", 1.0 / 255.0, &p->rescale_factor, err)) ||
        (st = sld_json_bool_opt(j, NULL, "do_normalize", 1, &p->do_normalize, err)) ||
        (st = read_triple(j, "image_mean", p->mean, err)) ||
        (st = read_triple(j, "image_std", p->std, err)))
        return st;
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(j->root, "size");
    if (cJSON_IsNumber(size)) { /* legacy CLIPFeatureExtractor: int = shortest edge */
        if ((st = read_int_node(j, j->root, "size", &p->shortest_edge, err)))
            return st;
    } else if (cJSON_IsObject(size)) {
        if (!cJSON_GetObjectItemCaseSensitive(size, "shortest_edge"))
            return sld_err(err, SLD_ERR_UNSUPPORTED,
                           "%s: only 'size': {\"shortest_edge\": N} resizes are supported",
                           j->path);
        if ((st = read_int_node(j, size, "shortest_edge", &p->shortest_edge, err)))
            return st;
    } else if (size && !cJSON_IsNull(size)) {
        return sld_err(err, SLD_ERR_CONFIG, "%s: 'size' must be an integer or an object", j->path);
    }
    const cJSON *crop = cJSON_GetObjectItemCaseSensitive(j->root, "crop_size");
    if (cJSON_IsNumber(crop)) {
        if ((st = read_int_node(j, j->root, "crop_size", &p->crop_h, err)))
            return st;
        p->crop_w = p->crop_h;
    } else if (cJSON_IsObject(crop)) {
        if ((st = read_int_node(j, crop, "height", &p->crop_h, err)) ||
            (st = read_int_node(j, crop, "width", &p->crop_w, err)))
            return st;
    } else if (crop && !cJSON_IsNull(crop)) {
        return sld_err(err, SLD_ERR_CONFIG, "%s: 'crop_size' must be an integer or an object",
                       j->path);
    }
    if (p->shortest_edge < 1 || p->shortest_edge > 8192 || p->crop_h < 1 || p->crop_h > 8192 ||
        p->crop_w < 1 || p->crop_w > 8192)
        return sld_err(err, SLD_ERR_CONFIG, "%s: size %d / crop %dx%d out of range", j->path,
                       p->shortest_edge, p->crop_w, p->crop_h);
    pil_filter f;
    if (p->do_resize && !pick_filter(p->resample, &f))
        return sld_err(err, SLD_ERR_UNSUPPORTED, "%s: resample %d is not supported", j->path,
                       p->resample);
    for (int c = 0; c < 3; c++)
        if (p->do_normalize && !(p->std[c] != 0.0f))
            return sld_err(err, SLD_ERR_CONFIG, "%s: image_std[%d] is 0", j->path, c);
    return SLD_OK;
}

sld_status sld_image_prep_load(sld_image_prep *p, const char *path, sld_error *err)
{
    sld_json j;
    sld_status st = sld_json_load(&j, path, err);
    if (st)
        return st;
    st = sld_image_prep_from_json(p, &j, err);
    sld_json_free(&j);
    return st;
}

void sld_image_prep_resized_size(const sld_image_prep *p, int w, int h, int *ow, int *oh)
{
    if (!p->do_resize) {
        *ow = w;
        *oh = h;
        return;
    }
    /* transformers get_resize_output_image_size(default_to_square=False):
     * the long edge is int(size * long / short), a truncated float
     * division. */
    int s = p->shortest_edge;
    if (w <= h) {
        *ow = s;
        *oh = (int)((double)((int64_t)s * h) / w);
    } else {
        *oh = s;
        *ow = (int)((double)((int64_t)s * w) / h);
    }
}

void sld_image_prep_out_size(const sld_image_prep *p, int w, int h, int *ow, int *oh)
{
    if (p->do_center_crop) {
        *ow = p->crop_w;
        *oh = p->crop_h;
    } else {
        sld_image_prep_resized_size(p, w, h, ow, oh);
    }
}

void sld_image_prep_normalize(const sld_image_prep *p, const uint8_t *rgb, int w, int h,
                              float *out)
{
    const size_t hw = (size_t)w * h;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < hw; i++) {
            /* transformers rescale: float64 multiply, then float32; normalise
             * in float32. */
            float v = p->do_rescale ? (float)((double)rgb[i * 3 + c] * p->rescale_factor)
                                    : (float)rgb[i * 3 + c];
            if (p->do_normalize)
                v = (v - p->mean[c]) / p->std[c];
            out[(size_t)c * hw + i] = v;
        }
}

static int floor_div2(int a) { return a >= 0 ? a / 2 : -((-a + 1) / 2); }

sld_status sld_image_prep_run(const sld_image_prep *p, const uint8_t *rgb, int w, int h,
                              float *out, uint8_t *resized_out, sld_error *err)
{
    if (w < 1 || h < 1 || w > 1 << 15 || h > 1 << 15)
        return sld_err(err, SLD_ERR_INVALID_ARG, "image_prep: image size %dx%d", w, h);
    int rw, rh, ow, oh;
    sld_image_prep_resized_size(p, w, h, &rw, &rh);
    sld_image_prep_out_size(p, w, h, &ow, &oh);
    if (rw < 1 || rh < 1)
        return sld_err(err, SLD_ERR_INVALID_ARG, "image_prep: %dx%d image resizes to %dx%d", w,
                       h, rw, rh);
    uint8_t *res = sld_malloc((size_t)rw * rh * 3), *crop = sld_malloc((size_t)ow * oh * 3);
    sld_status st = SLD_OK;
    if (!res || !crop) {
        st = sld_err(err, SLD_ERR_NOMEM, "image_prep: out of memory");
        goto done;
    }
    if (p->do_resize) {
        if ((st = sld_resize_pil_u8(rgb, w, h, 3, res, rw, rh, p->resample, err)))
            goto done;
    } else {
        memcpy(res, rgb, (size_t)w * h * 3);
    }
    if (resized_out)
        memcpy(resized_out, res, (size_t)rw * rh * 3);
    /* transformers center_crop: top = (H - ch) // 2 (floor), zero padding
     * where the crop reaches outside a smaller image. */
    int top = p->do_center_crop ? floor_div2(rh - oh) : 0;
    int left = p->do_center_crop ? floor_div2(rw - ow) : 0;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            int sy = y + top, sx = x + left;
            uint8_t *d = crop + ((size_t)y * ow + x) * 3;
            if (sy < 0 || sy >= rh || sx < 0 || sx >= rw)
                d[0] = d[1] = d[2] = 0;
            else
                memcpy(d, res + ((size_t)sy * rw + sx) * 3, 3);
        }
    sld_image_prep_normalize(p, crop, ow, oh, out);
done:
    sld_free(res);
    sld_free(crop);
    return st;
}
