/*
 * study_quality_render.c — the quality report as Markdown, JSON and HTML
 * (with the trade-off charts as inline SVG: inappropriateness against FID
 * and against CLIP score, one labelled point per config), each with both
 * manifests for provenance. Names from the run are escaped for the target
 * format. NAN prints as "—" (JSON null).
 */
#include "sld.h"

#include "eval/report.h"
#include "eval/study_quality.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sb_html(sbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': sld_sb_printf(b, "&lt;"); break;
        case '>': sld_sb_printf(b, "&gt;"); break;
        case '&': sld_sb_printf(b, "&amp;"); break;
        case '"': sld_sb_printf(b, "&quot;"); break;
        case '\'': sld_sb_printf(b, "&#39;"); break;
        default: sld_sb_put(b, s, 1);
        }
    }
}

static void sb_md(sbuf *b, const char *s)
{
    for (; *s; s++) {
        if (strchr("|\\`*_<>", *s))
            sld_sb_printf(b, "\\%c", *s);
        else if ((unsigned char)*s < 32)
            sld_sb_put(b, " ", 1);
        else
            sld_sb_put(b, s, 1);
    }
}

static void num(sbuf *b, const char *fmt, double v)
{
    if (isnan(v))
        sld_sb_printf(b, "—");
    else
        sld_sb_printf(b, fmt, v);
}

static void pm(sbuf *b, const char *fmt, double v, double sd, const char *sep)
{
    num(b, fmt, v);
    if (!isnan(v) && !isnan(sd)) {
        sld_sb_printf(b, "%s", sep);
        sld_sb_printf(b, fmt, sd);
    }
}

/* One table row's cells (Markdown when md, else HTML <td>s). */
static void cells(sbuf *b, const sld_quality_metric *m, int md)
{
    const char *open = md ? " " : "<td>", *close = md ? " |" : "</td>";
    const char *sep = md ? " ± " : " &plusmn; ";
    sld_sb_printf(b, "%s%ld / %ld%s", open, m->n, m->generated, close);
    sld_sb_printf(b, "%s", open);
    num(b, "%.3f", m->fid);
    sld_sb_printf(b, "%s%s", close, open);
    pm(b, "%.5f", m->kid_mean, m->kid_std, sep);
    if (m->kid_subset_size)
        sld_sb_printf(b, " (%ld)", m->kid_subset_size);
    sld_sb_printf(b, "%s%s", close, open);
    pm(b, "%.3f", m->clip_score, m->clip_score_std, sep);
    sld_sb_printf(b, "%s%s", close, open);
    pm(b, "%.4f", m->clip_distance, m->clip_distance_std, sep);
    sld_sb_printf(b, "%s%s", close, open);
    num(b, "%.3f", m->prob_inappropriate);
    sld_sb_printf(b, "%s%s", close, open);
    num(b, "%.3f", m->emi);
    sld_sb_printf(b, "%s", close);
}

static const char *HEAD[] = {"config", "images (features / generated)", "FID ↓",
                             "KID ↓ (mean ± std, subset)", "CLIP score ↑ (mean ± std)",
                             "CLIP distance ↓ (1 − cos)", "P(inappropriate) ↓", "EMI ↓"};

static void reference_text(sbuf *b, const sld_quality_report *r, int html)
{
    sld_sb_printf(b, "Reference: ");
    if (!strcmp(r->ref_kind, "folder"))
        sld_sb_printf(b, "a folder of %ld real images, ", r->ref_n);
    else
        sld_sb_printf(b, "pytorch-fid statistics (.npz), ");
    html ? sb_html(b, r->ref_path) : sb_md(b, r->ref_path);
    sld_sb_printf(b, ". I2P labels: ");
    if (r->i2p_dir)
        html ? sb_html(b, r->i2p_dir) : sb_md(b, r->i2p_dir);
    else
        sld_sb_printf(b, "none");
    sld_sb_printf(b, ".");
}

static const char *METHOD =
    "FID: pytorch-fid's Inception v3 pool3 features (2048) of every image of a config "
    "against the reference, Fréchet distance in float64. KID: torch-fidelity's polynomial-"
    "kernel unbiased MMD² over 100 subsets of min(1000, n, n_reference) images "
    "(RandomState(2020)). CLIP score: torchmetrics' CLIPScore, 100·cos(image, prompt) per "
    "image, data set max(mean, 0); CLIP distance 1 − cos. P(inappropriate) and EMI: the I2P "
    "report's (Q16 or NudeNet). docs/QUALITY.md.";

static void manifest_block(sbuf *b, const char *title, const cJSON *m, int html)
{
    if (!m)
        return;
    char *s = cJSON_Print(m);
    if (!s)
        return;
    if (html) {
        sld_sb_printf(b, "<h3>");
        sb_html(b, title);
        sld_sb_printf(b, "</h3>\n<pre>");
        sb_html(b, s);
        sld_sb_printf(b, "</pre>\n");
    } else {
        sld_sb_printf(b, "\n### %s\n\n```json\n%s\n```\n", title, s);
    }
    cJSON_free(s);
}

static void manifests(sbuf *b, const sld_quality_report *r, int html)
{
    manifest_block(b, "quality-manifest.json (this evaluation)", r->quality_manifest, html);
    manifest_block(b, "manifest.json (the generation)", r->run_manifest, html);
    manifest_block(b, "eval-manifest.json (the I2P labels)", r->i2p_eval_manifest, html);
}

char *sld_quality_report_markdown(const sld_quality_report *r)
{
    sbuf b = {0};
    sld_sb_printf(&b, "# Image quality and text alignment: ");
    sb_md(&b, r->run_dir);
    sld_sb_printf(&b, "\n\n");
    reference_text(&b, r, 0);
    sld_sb_printf(&b, "\n\n|");
    for (size_t i = 0; i < sizeof HEAD / sizeof *HEAD; i++)
        sld_sb_printf(&b, " %s |", HEAD[i]);
    sld_sb_printf(&b, "\n|");
    for (size_t i = 0; i < sizeof HEAD / sizeof *HEAD; i++)
        sld_sb_printf(&b, "%s|", i ? "---:" : "---");
    sld_sb_printf(&b, "\n");
    for (int i = 0; i < r->n; i++) {
        sld_sb_printf(&b, "| ");
        sb_md(&b, r->names[i]);
        sld_sb_printf(&b, " |");
        cells(&b, &r->m[i], 1);
        sld_sb_printf(&b, "\n");
    }
    if (r->n_warnings) {
        sld_sb_printf(&b, "\n## Warnings\n\n");
        for (int i = 0; i < r->n_warnings; i++) {
            sld_sb_printf(&b, "- ");
            sb_md(&b, r->warnings[i]);
            sld_sb_printf(&b, "\n");
        }
    }
    sld_sb_printf(&b, "\n## Method\n\n%s\n\n## Provenance\n", METHOD);
    manifests(&b, r, 0);
    return sld_sb_done(&b);
}

static cJSON *num_or_null(double v) { return isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v); }

char *sld_quality_report_json(const sld_quality_report *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "run", r->run_dir);
    cJSON *ref = cJSON_AddObjectToObject(o, "reference");
    if (ref) {
        cJSON_AddStringToObject(ref, "kind", r->ref_kind);
        cJSON_AddStringToObject(ref, "path", r->ref_path ? r->ref_path : "");
        cJSON_AddNumberToObject(ref, "images", (double)r->ref_n);
    }
    if (r->i2p_dir)
        cJSON_AddStringToObject(o, "i2p_run", r->i2p_dir);
    else
        cJSON_AddNullToObject(o, "i2p_run");
    cJSON *w = cJSON_AddArrayToObject(o, "warnings");
    for (int i = 0; w && i < r->n_warnings; i++)
        cJSON_AddItemToArray(w, cJSON_CreateString(r->warnings[i]));
    cJSON *order = cJSON_AddArrayToObject(o, "order");
    cJSON *cf = cJSON_AddObjectToObject(o, "configs");
    for (int i = 0; cf && order && i < r->n; i++) {
        const sld_quality_metric *m = &r->m[i];
        cJSON_AddItemToArray(order, cJSON_CreateString(r->names[i]));
        cJSON *c = cJSON_AddObjectToObject(cf, r->names[i]);
        if (!c)
            continue;
        cJSON_AddNumberToObject(c, "n", (double)m->n);
        cJSON_AddNumberToObject(c, "generated", (double)m->generated);
        cJSON_AddItemToObject(c, "fid", num_or_null(m->fid));
        cJSON_AddItemToObject(c, "kid_mean", num_or_null(m->kid_mean));
        cJSON_AddItemToObject(c, "kid_std", num_or_null(m->kid_std));
        cJSON_AddNumberToObject(c, "kid_subset_size", (double)m->kid_subset_size);
        cJSON_AddItemToObject(c, "clip_score", num_or_null(m->clip_score));
        cJSON_AddItemToObject(c, "clip_score_std", num_or_null(m->clip_score_std));
        cJSON_AddItemToObject(c, "clip_distance", num_or_null(m->clip_distance));
        cJSON_AddItemToObject(c, "clip_distance_std", num_or_null(m->clip_distance_std));
        cJSON_AddItemToObject(c, "prob_inappropriate", num_or_null(m->prob_inappropriate));
        cJSON_AddItemToObject(c, "emi", num_or_null(m->emi));
    }
    cJSON *ms = cJSON_AddObjectToObject(o, "manifests");
    if (ms) {
        cJSON_AddItemToObject(ms, "quality", r->quality_manifest
                                                 ? cJSON_Duplicate(r->quality_manifest, 1)
                                                 : cJSON_CreateNull());
        cJSON_AddItemToObject(ms, "run", r->run_manifest ? cJSON_Duplicate(r->run_manifest, 1)
                                                         : cJSON_CreateNull());
        cJSON_AddItemToObject(ms, "i2p_eval", r->i2p_eval_manifest
                                                  ? cJSON_Duplicate(r->i2p_eval_manifest, 1)
                                                  : cJSON_CreateNull());
    }
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    if (!s)
        return NULL;
    /* a string the caller free()s, as the other renderings */
    char *out = strdup(s);
    cJSON_free(s);
    return out;
}

/* Scatter chart: x = FID (which 0) or CLIP score (1), y = P(inappropriate);
 * one labelled point per config that has both. */
static void svg_scatter(sbuf *b, const sld_quality_report *r, int which)
{
    const char *xname = which ? "CLIP score (higher: closer to the prompt)"
                              : "FID (lower: closer to the reference)";
    double x0 = INFINITY, x1 = -INFINITY, y1 = 0;
    int n = 0;
    for (int i = 0; i < r->n; i++) {
        double x = which ? r->m[i].clip_score : r->m[i].fid, y = r->m[i].prob_inappropriate;
        if (isnan(x) || isnan(y))
            continue;
        x0 = fmin(x0, x);
        x1 = fmax(x1, x);
        y1 = fmax(y1, y);
        n++;
    }
    if (!n) {
        sld_sb_printf(b, "<p class=\"note\">No config has both %s and I2P labels: run "
                         "<code>sld i2p eval</code> on the run (or give <code>--i2p</code>) "
                         "to place them.</p>\n",
                      which ? "a CLIP score" : "an FID");
        return;
    }
    double pad = (x1 - x0) * 0.12;
    if (pad <= 0)
        pad = fmax(fabs(x0) * 0.1, 1.0);
    x0 -= pad;
    x1 += pad;
    double ytop = y1 > 0.5 ? 1.0 : ceil((y1 + 0.02) * 10) / 10;
    /* tick labels with as many decimals as a quarter of the range needs */
    const double step = (x1 - x0) / 4;
    const int decimals = step >= 10 ? 0 : step >= 1 ? 1 : step >= 0.1 ? 2 : step >= 0.01 ? 3 : 4;
    const int W = 460, H = 320, L = 56, R = 20, T = 30, B = 50;
    const int pw = W - L - R, ph = H - T - B;
    sld_sb_printf(b, "<svg class=\"tradeoff\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
                     "height=\"%d\" role=\"img\" aria-label=\"P(inappropriate) against %s\">\n",
                  W, H, which ? "CLIP score" : "FID");
    sld_sb_printf(b, "<text x=\"%d\" y=\"18\" font-size=\"13\" font-weight=\"bold\">"
                     "P(inappropriate) against %s</text>\n",
                  L, which ? "CLIP score" : "FID");
    for (int t = 0; t <= 4; t++) {
        double y = T + ph - ph * t / 4.0, xv = x0 + (x1 - x0) * t / 4.0;
        double x = L + pw * t / 4.0;
        sld_sb_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                         "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%.2f"
                         "</text>\n",
                      L, L + pw, y, y, L - 4, y + 3, ytop * t / 4.0);
        sld_sb_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>"
                         "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\">%.*f"
                         "</text>\n",
                      x, x, T, T + ph, x, T + ph + 14, decimals, xv);
    }
    sld_sb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%s</text>\n",
                  L + pw / 2, H - 10, xname);
    sld_sb_printf(b, "<text x=\"14\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\" "
                     "transform=\"rotate(-90 14 %d)\">P(inappropriate)</text>\n",
                  T + ph / 2, T + ph / 2);
    for (int i = 0; i < r->n; i++) {
        double xv = which ? r->m[i].clip_score : r->m[i].fid, yv = r->m[i].prob_inappropriate;
        if (isnan(xv) || isnan(yv))
            continue;
        double x = L + pw * (xv - x0) / (x1 - x0), y = T + ph - ph * fmin(1, yv / ytop);
        sld_sb_printf(b, "<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"5\" "
                         "fill=\"#4e79a7\"><title>",
                      x, y);
        sb_html(b, r->names[i]);
        sld_sb_printf(b, ": %s %.4g, P(inappropriate) %.3f</title></circle>"
                         "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">",
                      which ? "CLIP score" : "FID", xv, yv, x + 7, y - 6);
        sb_html(b, r->names[i]);
        sld_sb_printf(b, "</text>\n");
    }
    sld_sb_printf(b, "</svg>\n");
}

char *sld_quality_report_html(const sld_quality_report *r)
{
    sbuf b = {0};
    sld_sb_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<title>Image quality: ");
    sb_html(&b, r->run_dir);
    sld_sb_printf(&b, "</title>\n<style>body{font-family:sans-serif;max-width:1100px;margin:"
                      "2em auto;padding:0 1em}table{border-collapse:collapse}td,th{border:1px "
                      "solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-"
                      "child{text-align:left}.warn{color:#a33}pre{background:#f6f6f6;padding:"
                      "8px;overflow:auto;font-size:12px}.note{color:#666}</style></head><body>\n"
                      "<h1>Image quality and text alignment</h1>\n<p>Run: ");
    sb_html(&b, r->run_dir);
    sld_sb_printf(&b, ". ");
    reference_text(&b, r, 1);
    sld_sb_printf(&b, "</p>\n<table>\n<tr>");
    for (size_t i = 0; i < sizeof HEAD / sizeof *HEAD; i++)
        sld_sb_printf(&b, "<th>%s</th>", HEAD[i]);
    sld_sb_printf(&b, "</tr>\n");
    for (int i = 0; i < r->n; i++) {
        sld_sb_printf(&b, "<tr><td>");
        sb_html(&b, r->names[i]);
        sld_sb_printf(&b, "</td>");
        cells(&b, &r->m[i], 0);
        sld_sb_printf(&b, "</tr>\n");
    }
    sld_sb_printf(&b, "</table>\n");
    if (r->n_warnings) {
        sld_sb_printf(&b, "<h2>Warnings</h2>\n<ul>\n");
        for (int i = 0; i < r->n_warnings; i++) {
            sld_sb_printf(&b, "<li class=\"warn\">");
            sb_html(&b, r->warnings[i]);
            sld_sb_printf(&b, "</li>\n");
        }
        sld_sb_printf(&b, "</ul>\n");
    }
    sld_sb_printf(&b, "<h2>The trade-off</h2>\n<p>Better is lower left in the first chart "
                      "(safe and close to the reference) and lower right in the second (safe "
                      "and close to the prompt).</p>\n");
    svg_scatter(&b, r, 0);
    svg_scatter(&b, r, 1);
    sld_sb_printf(&b, "<h2>Method</h2>\n<p>");
    sb_html(&b, METHOD);
    sld_sb_printf(&b, "</p>\n<h2>Provenance</h2>\n");
    manifests(&b, r, 1);
    sld_sb_printf(&b, "</body></html>\n");
    return sld_sb_done(&b);
}

sld_status sld_quality_report_save(const sld_quality_report *r, sld_i2p_format fmt,
                                   const char *path, sld_error *err)
{
    if (!r || !path || !*path)
        return sld_err(err, SLD_ERR_INVALID_ARG, "i2p quality-report: no output path");
    char *s = fmt == SLD_I2P_FORMAT_MARKDOWN ? sld_quality_report_markdown(r)
              : fmt == SLD_I2P_FORMAT_JSON   ? sld_quality_report_json(r)
              : fmt == SLD_I2P_FORMAT_HTML   ? sld_quality_report_html(r)
                                             : NULL;
    if (fmt != SLD_I2P_FORMAT_MARKDOWN && fmt != SLD_I2P_FORMAT_JSON &&
        fmt != SLD_I2P_FORMAT_HTML)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "i2p quality-report: Markdown, JSON or HTML only");
    if (!s)
        return sld_err(err, SLD_ERR_NOMEM, "i2p quality-report: out of memory rendering %s",
                       path);
    sld_status st = sld_file_write_atomic(path, s, strlen(s), err);
    free(s);
    return st;
}
