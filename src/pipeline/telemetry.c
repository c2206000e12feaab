/*
 * telemetry.c — what SLD did, after the fact: the per-image summary of a
 * generation's step telemetry and the rendering of safety maps as heatmaps
 * (public in sld.h; quantities and colormap: docs/TELEMETRY.md).
 *
 * The telemetry itself is measured in the guidance pass
 * (sample/guidance.c, sld_guidance_apply_traced); this file only reduces and
 * draws it. Pure functions of their inputs: no allocation, no state.
 */
#include "core/core.h"

#include <math.h>
#include <string.h>

void sld_safety_summary_get(const sld_step_stats *steps, int n_steps, int n_images, int image,
                            sld_safety_summary *out)
{
    memset(out, 0, sizeof *out);
    out->peak_step = -1;
    if (!steps || n_steps < 1 || n_images < 1 || image < 0 || image >= n_images)
        return;
    double share = 0, scale = 0;
    for (int i = 0; i < n_steps; i++) {
        const sld_step_stats *s = &steps[(size_t)i * n_images + image];
        share += s->mask_share;
        scale += s->scale_mean;
        out->safety_total += s->safety_norm;
        if (s->mask_share > 0)
            out->steps_steered++;
        if (s->mask_share > out->peak_share) {
            out->peak_share = s->mask_share;
            out->peak_step = i;
        }
    }
    out->steered_share = share / n_steps;
    /* sum of mu over steered pairs / count of steered pairs, both per element */
    out->mean_scale = share > 0 ? scale / share : 0.0;
}

/* The "sld-heat" colormap: anchors at v = 0, 0.25, 0.5, 0.75, 1. */
static const float HEAT[5][3] = {
    {0, 0, 0}, {90, 20, 130}, {200, 40, 60}, {250, 150, 30}, {255, 250, 200},
};

static void heat(float v, float rgb[3])
{
    float x = v * 4.0f;
    int k = (int)x;
    if (k >= 4) {
        k = 3;
        x = 4.0f;
    }
    float t = x - (float)k;
    for (int c = 0; c < 3; c++)
        rgb[c] = HEAT[k][c] + t * (HEAT[k + 1][c] - HEAT[k][c]);
}

/* Source coordinate of output pixel o when scaling n_in -> n_out with
 * half-pixel centres: lower index, its weight goes to the upper one. */
static void bilinear_src(int o, int n_in, int n_out, int *i0, int *i1, float *t)
{
    float s = ((float)o + 0.5f) * (float)n_in / (float)n_out - 0.5f;
    if (s < 0)
        s = 0;
    int a = (int)s;
    if (a > n_in - 1)
        a = n_in - 1;
    *i0 = a;
    *i1 = a + 1 < n_in ? a + 1 : a;
    *t = s - (float)a;
    if (*t > 1)
        *t = 1;
}

sld_status sld_safety_map_render(const float *map, int map_w, int map_h, float vmax,
                                 const uint8_t *under, int width, int height, uint8_t *rgb,
                                 sld_error *err)
{
    if (!map || !rgb || map_w < 1 || map_h < 1 || width < 1 || height < 1)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "safety map: need a map of at least 1x1 and an output of at least 1x1 "
                       "(got %dx%d -> %dx%d)",
                       map_w, map_h, width, height);
    if (!isfinite(vmax))
        return sld_err(err, SLD_ERR_INVALID_ARG, "safety map: the scale maximum must be finite");
    if (vmax <= 0) {
        vmax = 0;
        for (size_t k = 0; k < (size_t)map_w * map_h; k++)
            if (map[k] > vmax)
                vmax = map[k];
    }
    const float inv = vmax > 0 ? 1.0f / vmax : 0.0f;
    for (int y = 0; y < height; y++) {
        int y0, y1;
        float ty;
        bilinear_src(y, map_h, height, &y0, &y1, &ty);
        for (int x = 0; x < width; x++) {
            int x0, x1;
            float tx;
            bilinear_src(x, map_w, width, &x0, &x1, &tx);
            float a = map[(size_t)y0 * map_w + x0], b = map[(size_t)y0 * map_w + x1];
            float c = map[(size_t)y1 * map_w + x0], d = map[(size_t)y1 * map_w + x1];
            float top = a + tx * (b - a), bot = c + tx * (d - c);
            float v = (top + ty * (bot - top)) * inv;
            v = v > 0 ? (v < 1 ? v : 1) : 0; /* also maps NaN to 0 */
            float col[3];
            heat(v, col);
            uint8_t *o = rgb + ((size_t)y * width + x) * 3;
            if (under) {
                const uint8_t *u = under + ((size_t)y * width + x) * 3;
                float alpha = 0.75f * v;
                for (int ch = 0; ch < 3; ch++)
                    col[ch] = (1.0f - alpha) * u[ch] + alpha * col[ch];
            }
            for (int ch = 0; ch < 3; ch++)
                o[ch] = (uint8_t)lrintf(col[ch] < 0 ? 0 : col[ch] > 255 ? 255 : col[ch]);
        }
    }
    return SLD_OK;
}
