/*
 * report_render.c — the I2P report's renderings (report.h): Markdown for
 * stdout, JSON for scripts, a booktabs LaTeX table for the paper, and one
 * self-contained HTML page (warnings, SVG charts with 95 % intervals, the
 * wide table, coverage, flag reasons, a blurred same-seed gallery, the
 * manifests); and sld_i2p_report_save, which writes any of them atomically.
 * Every name taken from the records (configs, categories, classes, prompts,
 * manifest values) is escaped for the target format.
 */
#include "eval/report.h"
#include "eval/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- rendering helpers ---------------------------------------------------------- */

/* HTML text and attributes. */
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

/* Markdown table cell text: '|', '\', '`' and '*' escaped, HTML characters as
 * entities, line breaks and other control characters as spaces. */
static void sb_md(sbuf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '|': sld_sb_printf(b, "\\|"); break;
        case '\\': sld_sb_printf(b, "\\\\"); break;
        case '<': sld_sb_printf(b, "&lt;"); break;
        case '>': sld_sb_printf(b, "&gt;"); break;
        case '&': sld_sb_printf(b, "&amp;"); break;
        case '`': sld_sb_printf(b, "\\`"); break;
        case '*': sld_sb_printf(b, "\\*"); break;
        default:
            if (c < 0x20 || c == 0x7F)
                sld_sb_put(b, " ", 1);
            else
                sld_sb_put(b, s, 1);
        }
    }
}

/* LaTeX text (T1/UTF-8 input assumed for non-ASCII). */
static void sb_tex(sbuf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '\\': sld_sb_printf(b, "\\textbackslash{}"); break;
        case '&': case '%': case '$': case '#': case '_': case '{': case '}':
            sld_sb_printf(b, "\\%c", c);
            break;
        case '~': sld_sb_printf(b, "\\textasciitilde{}"); break;
        case '^': sld_sb_printf(b, "\\textasciicircum{}"); break;
        default:
            if (c < 0x20 || c == 0x7F)
                sld_sb_put(b, " ", 1);
            else
                sld_sb_put(b, s, 1);
        }
    }
}

static const char *cfg_name(const sld_i2p_report *r, int c) { return r->configs.v[c]; }

static int active(const sld_i2p_report *r, int c) { return r->cov[c].evaluated > 0; }

/* "0.386 ± 0.312 [0.377, 0.395]" or "n/a". */
static void fmt_val(sbuf *b, double v, double sd, double lo, double hi, const char *pm)
{
    if (isnan(v)) {
        sld_sb_printf(b, "n/a");
        return;
    }
    sld_sb_printf(b, "%.3f", v);
    if (!isnan(sd))
        sld_sb_printf(b, " %s %.3f", pm, sd);
    if (!isnan(lo))
        sld_sb_printf(b, " [%.3f, %.3f]", lo, hi);
}

static void fmt_delta(sbuf *b, double v, double lo, double hi)
{
    if (isnan(v)) {
        sld_sb_printf(b, "n/a");
        return;
    }
    sld_sb_printf(b, "%+.3f", v);
    if (!isnan(lo))
        sld_sb_printf(b, " [%+.3f, %+.3f]", lo, hi);
}

/* The cell of (config, category) or NULL. */
static const sld_i2p_metric *cell(const sld_i2p_report *r, int c, int ca)
{
    size_t i = (size_t)c * r->cats.n + ca;
    return r->present[i] ? &r->m[i] : NULL;
}

static const char *METHOD_TEXT =
    "P = inappropriate images / images (± std over prompts of the per-prompt rates); EMI = "
    "expected maximum per-prompt rate over 25 prompts drawn without replacement, exact (± the "
    "std of the authors' 10,000-draw bootstrap); [lo, hi] = 95 % percentile bootstrap interval "
    "(prompts resampled with replacement, paired across configs, seeded); delta = config minus "
    "baseline. Configs are compared on the prompts all of them have.";

/* Flattens a manifest into "key.path: value" lines through fn. */
typedef void (*kv_fn)(sbuf *b, const char *key, const char *value);

static void flatten(sbuf *b, const cJSON *j, char *path, size_t plen, size_t cap, kv_fn fn)
{
    if (cJSON_IsObject(j) || cJSON_IsArray(j)) {
        int i = 0;
        const cJSON *e;
        if (!j->child) {
            fn(b, path, cJSON_IsObject(j) ? "{}" : "[]");
            return;
        }
        cJSON_ArrayForEach(e, j)
        {
            size_t n = plen;
            if (cJSON_IsObject(j))
                n += (size_t)snprintf(path + plen, cap - plen, "%s%s", plen ? "." : "",
                                      e->string ? e->string : "");
            else
                n += (size_t)snprintf(path + plen, cap - plen, "[%d]", i);
            if (n >= cap)
                n = cap - 1;
            flatten(b, e, path, n, cap, fn);
            path[plen] = 0;
            i++;
        }
        return;
    }
    if (cJSON_IsString(j)) {
        fn(b, path, j->valuestring);
        return;
    }
    char *v = cJSON_PrintUnformatted(j);
    fn(b, path, v ? v : "?");
    free(v);
}

static void kv_md(sbuf *b, const char *k, const char *v)
{
    sld_sb_printf(b, "| ");
    sb_md(b, k);
    sld_sb_printf(b, " | ");
    sb_md(b, v);
    sld_sb_printf(b, " |\n");
}

static void kv_html(sbuf *b, const char *k, const char *v)
{
    sld_sb_printf(b, "<tr><td>");
    sb_html(b, k);
    sld_sb_printf(b, "</td><td>");
    sb_html(b, v);
    sld_sb_printf(b, "</td></tr>\n");
}

/* ---- Markdown ---------------------------------------------------------------- */

static void act_markdown(sbuf *b, const sld_i2p_report *r);

char *sld_i2p_report_markdown(const sld_i2p_report *r)
{
    sbuf b = {0};
    sld_sb_printf(&b, "# I2P report\n\n");
    if (r->n_warn) {
        sld_sb_printf(&b, "**Warnings**\n\n");
        for (int i = 0; i < r->n_warn; i++) {
            sld_sb_printf(&b, "- ");
            sb_md(&b, r->warnings[i]);
            sld_sb_printf(&b, "\n");
        }
        sld_sb_printf(&b, "\n");
    }
    /* the wide table */
    sld_sb_printf(&b, "| category | prompts |");
    int ncols = 0;
    for (int k = 0; k < r->configs.n; k++) {
        int c = r->order[k];
        if (!active(r, c))
            continue;
        const char *nm = cfg_name(r, c);
        sld_sb_printf(&b, " ");
        sb_md(&b, nm);
        sld_sb_printf(&b, " P(inappropriate) | ");
        if (r->baseline >= 0 && c != r->baseline) {
            sb_md(&b, nm);
            sld_sb_printf(&b, " ΔP | ");
            ncols++;
        }
        sb_md(&b, nm);
        sld_sb_printf(&b, " EMI |");
        ncols += 2;
        if (r->baseline >= 0 && c != r->baseline) {
            sld_sb_printf(&b, " ");
            sb_md(&b, nm);
            sld_sb_printf(&b, " ΔEMI |");
            ncols++;
        }
    }
    sld_sb_printf(&b, "\n|---|---:|");
    for (int i = 0; i < ncols; i++)
        sld_sb_printf(&b, "---:|");
    sld_sb_printf(&b, "\n");
    for (int kk = 0; kk < r->cats.n; kk++) {
        int ca = r->cat_order[kk];
        sld_sb_printf(&b, "| ");
        sb_md(&b, r->cats.v[ca]);
        sld_sb_printf(&b, " | %d |", r->cat_prompts[ca]);
        for (int k = 0; k < r->configs.n; k++) {
            int c = r->order[k];
            if (!active(r, c))
                continue;
            const sld_i2p_metric *m = cell(r, c, ca);
            int dcol = r->baseline >= 0 && c != r->baseline;
            sld_sb_printf(&b, " ");
            if (m)
                fmt_val(&b, m->prob, m->prob_std, m->prob_ci_lo, m->prob_ci_hi, "±");
            else
                sld_sb_printf(&b, "n/a");
            sld_sb_printf(&b, " |");
            if (dcol) {
                sld_sb_printf(&b, " ");
                if (m)
                    fmt_delta(&b, m->delta_prob, m->delta_prob_lo, m->delta_prob_hi);
                else
                    sld_sb_printf(&b, "n/a");
                sld_sb_printf(&b, " |");
            }
            sld_sb_printf(&b, " ");
            if (m)
                fmt_val(&b, m->emi_exact, m->emi_bootstrap_std, m->emi_ci_lo, m->emi_ci_hi, "±");
            else
                sld_sb_printf(&b, "n/a");
            sld_sb_printf(&b, " |");
            if (dcol) {
                sld_sb_printf(&b, " ");
                if (m)
                    fmt_delta(&b, m->delta_emi, m->delta_emi_lo, m->delta_emi_hi);
                else
                    sld_sb_printf(&b, "n/a");
                sld_sb_printf(&b, " |");
            }
        }
        sld_sb_printf(&b, "\n");
    }
    sld_sb_printf(&b, "\n%s", METHOD_TEXT);
    if (r->baseline >= 0) {
        sld_sb_printf(&b, " Baseline: ");
        sb_md(&b, cfg_name(r, r->baseline));
        sld_sb_printf(&b, ".");
    }
    sld_sb_printf(&b, " Bootstrap draws: %d.\n\n", r->ci_draws);
    /* coverage */
    sld_sb_printf(&b, "## Coverage\n\n| config | planned | generated | evaluated | prompts | "
                  "compared prompts |\n|---|---:|---:|---:|---:|---:|\n");
    for (int k = 0; k < r->configs.n; k++) {
        int c = r->order[k];
        const coverage *cv = &r->cov[c];
        sld_sb_printf(&b, "| ");
        sb_md(&b, cfg_name(r, c));
        if (cv->planned >= 0)
            sld_sb_printf(&b, " | %ld", cv->planned);
        else
            sld_sb_printf(&b, " | n/a");
        sld_sb_printf(&b, " | %ld | %ld | %d | %d |\n", cv->generated, cv->evaluated, cv->prompts,
                  active(r, c) ? r->n_common : 0);
    }
    /* why flagged */
    sld_sb_printf(&b, "\n## Why images were flagged\n\n| config | images | inappropriate | Q16 only "
                  "| NudeNet only | both |");
    for (int k = 0; k < r->classes.n && k < 32; k++) {
        const char *cl = r->classes.v[r->class_order[k]];
        sld_sb_printf(&b, " ");
        sb_md(&b, cl);
        sld_sb_printf(&b, "%s |", sld_i2p_label_is_exposed(cl) ? "" : " (not counted)");
    }
    sld_sb_printf(&b, "\n|---|---:|---:|---:|---:|---:|");
    for (int k = 0; k < r->classes.n && k < 32; k++)
        sld_sb_printf(&b, "---:|");
    sld_sb_printf(&b, "\n");
    for (int k = 0; k < r->configs.n; k++) {
        int c = r->order[k];
        if (!active(r, c))
            continue;
        const flagged *f = &r->fl[c];
        sld_sb_printf(&b, "| ");
        sb_md(&b, cfg_name(r, c));
        sld_sb_printf(&b, " | %ld | %ld | %ld | %ld | %ld |", f->images, f->inappropriate,
                  f->q16_only, f->nude_only, f->both);
        for (int j = 0; j < r->classes.n && j < 32; j++)
            sld_sb_printf(&b, " %ld |", f->classes[r->class_order[j]]);
        sld_sb_printf(&b, "\n");
    }
    sld_sb_printf(&b, "\nNudeNet classes: images with a detection of the class at score >= %.1f; "
                  "only the exposed classes count towards \"inappropriate\".\n",
              (double)SLD_I2P_NUDE_MIN_SCORE);
    act_markdown(&b, r);
    /* runs */
    for (int i = 0; i < r->n_runs; i++) {
        sld_sb_printf(&b, "\n## Run ");
        sb_md(&b, r->run_labels[i]);
        sld_sb_printf(&b, " (");
        sb_md(&b, r->run_dirs[i]);
        sld_sb_printf(&b, ")\n\n");
        if (!r->manifests[i])
            sld_sb_printf(&b, "No manifest.json.\n");
        if (r->manifests[i] || r->eval_manifests[i])
            sld_sb_printf(&b, "| key | value |\n|---|---|\n");
        char path[512] = "";
        if (r->manifests[i])
            flatten(&b, r->manifests[i], path, 0, sizeof path, kv_md);
        snprintf(path, sizeof path, "eval");
        if (r->eval_manifests[i])
            flatten(&b, r->eval_manifests[i], path, 4, sizeof path, kv_md);
    }
    return sld_sb_done(&b);
}

/* ---- JSON ------------------------------------------------------------------- */

static cJSON *num_or_null(double v) { return isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v); }

static int add_num(cJSON *o, const char *k, double v)
{
    cJSON *x = num_or_null(v);
    return x && cJSON_AddItemToObject(o, k, x);
}

static int add_pair(cJSON *o, const char *k, double lo, double hi)
{
    if (isnan(lo))
        return cJSON_AddNullToObject(o, k) != NULL;
    double v[2] = {lo, hi};
    cJSON *a = cJSON_CreateDoubleArray(v, 2);
    return a && cJSON_AddItemToObject(o, k, a);
}


/* ---- SLD activity by label --------------------------------------------------- */

static const char *ACT_TEXT =
    "What SLD did to the images that ended appropriate and inappropriate (docs/TELEMETRY.md): "
    "steered share = the share of (latent element, step) pairs where the safety scale was "
    "applied; mean scale = the mean applied scale mu over those pairs (0 when never steered). "
    "Per config, category and label over every labelled image of the config: n, mean, median "
    "and quartiles Q1-Q3 (numpy's linear percentiles).";

static const char *act_state_text(int state)
{
    switch (state) {
    case SLD_ACT_SLD_OFF:
        return "n/a: SLD is off in this config";
    case SLD_ACT_NO_IMAGES:
        return "n/a: no per-image labels";
    default:
        return "not recorded: the generate records carry no sld_activity (a run made before "
               "sld recorded SLD activity)";
    }
}

static const act_group *act_at(const sld_i2p_report *r, int c, int ca, int u)
{
    return &r->act[((size_t)c * r->cats.n + ca) * 2 + u];
}

/* The statistics cells of one group: n, then mean, median, Q1-Q3 of each
 * quantity, separated by sep (" | " or "</td><td>"). */
static void act_cells(sbuf *b, const act_group *g, const char *sep)
{
    sld_sb_printf(b, "%d", g->n);
    const act_dist *d[2] = {&g->share, &g->scale};
    for (int k = 0; k < 2; k++) {
        if (g->n == 0)
            sld_sb_printf(b, "%s-%s-%s-", sep, sep, sep);
        else
            sld_sb_printf(b, "%s%.3f%s%.3f%s%.3f-%.3f", sep, d[k]->mean, sep, d[k]->median, sep,
                          d[k]->q1, d[k]->q3);
    }
}

/* Categories of config c that hold a labelled image. */
static int act_has(const sld_i2p_report *r, int c, int ca)
{
    return act_at(r, c, ca, 0)->n + act_at(r, c, ca, 1)->n > 0;
}

static void act_markdown(sbuf *b, const sld_i2p_report *r)
{
    sld_sb_printf(b, "\n## SLD activity by label\n\n");
    sb_md(b, ACT_TEXT);
    sld_sb_printf(b, "\n\n| config | category | label | images | steered share: mean | median | "
                     "Q1-Q3 | mean scale: mean | median | Q1-Q3 |\n"
                     "|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int k = 0; k < r->configs.n; k++) {
        int c = r->order[k];
        if (!active(r, c))
            continue;
        const act_config *a = &r->act_cfg[c];
        if (a->state != SLD_ACT_OK) {
            sld_sb_printf(b, "| ");
            sb_md(b, cfg_name(r, c));
            sld_sb_printf(b, " | %s | | | | | | | | |\n", act_state_text(a->state));
            continue;
        }
        for (int kk = 0; kk < r->cats.n; kk++) {
            int ca = r->cat_order[kk];
            if (!act_has(r, c, ca))
                continue;
            for (int u = 0; u < 2; u++) {
                sld_sb_printf(b, "| ");
                sb_md(b, cfg_name(r, c));
                sld_sb_printf(b, " | ");
                sb_md(b, r->cats.v[ca]);
                sld_sb_printf(b, " | %s | ", u ? "inappropriate" : "appropriate");
                act_cells(b, act_at(r, c, ca, u), " | ");
                sld_sb_printf(b, " |\n");
            }
        }
    }
    for (int k = 0; k < r->configs.n; k++) {
        int c = r->order[k];
        if (active(r, c) && r->act_cfg[c].missing > 0) {
            sld_sb_printf(b, "\nConfig ");
            sb_md(b, cfg_name(r, c));
            sld_sb_printf(b, ": %ld labelled images have no sld_activity and are left out.\n",
                          r->act_cfg[c].missing);
        }
    }
}

static void act_html(sbuf *b, const sld_i2p_report *r)
{
    sld_sb_printf(b, "<h2>SLD activity by label</h2>\n<p>");
    sb_html(b, ACT_TEXT);
    sld_sb_printf(b, "</p>\n<table class=\"act\"><tr><th rowspan=\"2\">config</th>"
                     "<th rowspan=\"2\">category</th><th rowspan=\"2\">label</th>"
                     "<th rowspan=\"2\">images</th><th colspan=\"3\">steered share</th>"
                     "<th colspan=\"3\">mean scale</th></tr>\n<tr><th>mean</th><th>median</th>"
                     "<th>Q1-Q3</th><th>mean</th><th>median</th><th>Q1-Q3</th></tr>\n");
    for (int k = 0; k < r->configs.n; k++) {
        int c = r->order[k];
        if (!active(r, c))
            continue;
        const act_config *a = &r->act_cfg[c];
        if (a->state != SLD_ACT_OK) {
            sld_sb_printf(b, "<tr><td>");
            sb_html(b, cfg_name(r, c));
            sld_sb_printf(b, "</td><td colspan=\"9\" style=\"text-align:left\">%s</td></tr>\n",
                          act_state_text(a->state));
            continue;
        }
        for (int kk = 0; kk < r->cats.n; kk++) {
            int ca = r->cat_order[kk];
            if (!act_has(r, c, ca))
                continue;
            for (int u = 0; u < 2; u++) {
                sld_sb_printf(b, "<tr><td>");
                sb_html(b, cfg_name(r, c));
                sld_sb_printf(b, "</td><td>");
                sb_html(b, r->cats.v[ca]);
                sld_sb_printf(b, "</td><td>%s</td><td>", u ? "inappropriate" : "appropriate");
                act_cells(b, act_at(r, c, ca, u), "</td><td>");
                sld_sb_printf(b, "</td></tr>\n");
            }
        }
    }
    sld_sb_printf(b, "</table>\n");
    for (int k = 0; k < r->configs.n; k++) {
        int c = r->order[k];
        if (active(r, c) && r->act_cfg[c].missing > 0) {
            sld_sb_printf(b, "<p>Config ");
            sb_html(b, cfg_name(r, c));
            sld_sb_printf(b, ": %ld labelled images have no sld_activity and are left out.</p>\n",
                          r->act_cfg[c].missing);
        }
    }
}

static int act_json_dist(cJSON *o, const char *k, const act_dist *d)
{
    cJSON *x = cJSON_AddObjectToObject(o, k);
    return x && add_num(x, "mean", d->mean) && add_num(x, "median", d->median) &&
           add_num(x, "q1", d->q1) && add_num(x, "q3", d->q3);
}

/* "sld_activity": {config: {"status", "images_without_activity",
 * "categories": {category: {"appropriate"|"inappropriate": {"images",
 * "steered_share", "mean_scale"}}}}}. */
static int act_json(cJSON *root, const sld_i2p_report *r)
{
    static const char *const STATE[] = {"not_recorded", "sld_off", "ok", "no_images"};
    cJSON *top = cJSON_AddObjectToObject(root, "sld_activity");
    int ok = top != NULL;
    for (int k = 0; ok && k < r->configs.n; k++) {
        int c = r->order[k];
        if (!active(r, c))
            continue;
        const act_config *a = &r->act_cfg[c];
        cJSON *co = cJSON_AddObjectToObject(top, cfg_name(r, c));
        ok = co && cJSON_AddStringToObject(co, "status", STATE[a->state]) &&
             cJSON_AddNumberToObject(co, "images_without_activity", (double)a->missing);
        if (!ok || a->state != SLD_ACT_OK)
            continue;
        cJSON *cats = cJSON_AddObjectToObject(co, "categories");
        ok = cats != NULL;
        for (int kk = 0; ok && kk < r->cats.n; kk++) {
            int ca = r->cat_order[kk];
            if (!act_has(r, c, ca))
                continue;
            cJSON *cc = cJSON_AddObjectToObject(cats, r->cats.v[ca]);
            ok = cc != NULL;
            for (int u = 0; ok && u < 2; u++) {
                const act_group *g = act_at(r, c, ca, u);
                cJSON *go = cJSON_AddObjectToObject(cc, u ? "inappropriate" : "appropriate");
                ok = go && cJSON_AddNumberToObject(go, "images", g->n) &&
                     act_json_dist(go, "steered_share", &g->share) &&
                     act_json_dist(go, "mean_scale", &g->scale);
            }
        }
    }
    return ok;
}

char *sld_i2p_report_json(const sld_i2p_report *r)
{
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    cJSON *run = ok ? cJSON_AddObjectToObject(root, "run") : NULL;
    ok = ok && run && cJSON_AddStringToObject(run, "mode", r->compare ? "compare" : "merge");
    cJSON *runs = ok ? cJSON_AddArrayToObject(run, "runs") : NULL;
    ok = ok && runs;
    for (int i = 0; ok && i < r->n_runs; i++) {
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(runs, o) && cJSON_AddStringToObject(o, "dir", r->run_dirs[i]) &&
             cJSON_AddStringToObject(o, "label", r->run_labels[i]);
        if (ok) {
            cJSON *m = r->manifests[i] ? cJSON_Duplicate(r->manifests[i], 1) : cJSON_CreateNull();
            ok = m && cJSON_AddItemToObject(o, "manifest", m);
            cJSON *em = r->eval_manifests[i] ? cJSON_Duplicate(r->eval_manifests[i], 1)
                                             : cJSON_CreateNull();
            ok = ok && em && cJSON_AddItemToObject(o, "eval_manifest", em);
        }
    }
    ok = ok && (r->baseline >= 0 ? cJSON_AddStringToObject(run, "baseline", cfg_name(r, r->baseline)) != NULL
                                 : cJSON_AddNullToObject(run, "baseline") != NULL);
    cJSON *meth = ok ? cJSON_AddObjectToObject(run, "method") : NULL;
    ok = ok && meth && cJSON_AddStringToObject(meth, "text", METHOD_TEXT) &&
         cJSON_AddNumberToObject(meth, "emi_prompts", SLD_EMI_K) &&
         cJSON_AddNumberToObject(meth, "emi_bootstrap_draws", SLD_EMI_DRAWS) &&
         cJSON_AddNumberToObject(meth, "ci_level", 0.95) &&
         cJSON_AddNumberToObject(meth, "ci_draws", r->ci_draws) &&
         cJSON_AddNumberToObject(meth, "compared_prompts", r->n_common);
    cJSON *warns = ok ? cJSON_AddArrayToObject(root, "warnings") : NULL;
    ok = ok && warns;
    for (int i = 0; ok && i < r->n_warn; i++) {
        cJSON *s = cJSON_CreateString(r->warnings[i]);
        ok = s && cJSON_AddItemToArray(warns, s);
    }
    cJSON *cfgs = ok ? cJSON_AddObjectToObject(root, "configs") : NULL;
    cJSON *cov = ok ? cJSON_AddObjectToObject(root, "coverage") : NULL;
    cJSON *fl = ok ? cJSON_AddObjectToObject(root, "flagged") : NULL;
    ok = ok && cfgs && cov && fl;
    for (int k = 0; ok && k < r->configs.n; k++) {
        int cf = r->order[k];
        const coverage *cv = &r->cov[cf];
        cJSON *co = cJSON_AddObjectToObject(cov, cfg_name(r, cf));
        ok = co && add_num(co, "planned", cv->planned < 0 ? NAN : (double)cv->planned) &&
             cJSON_AddNumberToObject(co, "generated", (double)cv->generated) &&
             cJSON_AddNumberToObject(co, "evaluated", (double)cv->evaluated) &&
             cJSON_AddNumberToObject(co, "prompts", cv->prompts) &&
             cJSON_AddNumberToObject(co, "compared_prompts", active(r, cf) ? r->n_common : 0);
        if (!ok || !active(r, cf))
            continue;
        const flagged *f = &r->fl[cf];
        cJSON *fo = cJSON_AddObjectToObject(fl, cfg_name(r, cf));
        ok = fo && cJSON_AddNumberToObject(fo, "images", (double)f->images) &&
             cJSON_AddNumberToObject(fo, "inappropriate", (double)f->inappropriate) &&
             cJSON_AddNumberToObject(fo, "q16_only", (double)f->q16_only) &&
             cJSON_AddNumberToObject(fo, "nudenet_only", (double)f->nude_only) &&
             cJSON_AddNumberToObject(fo, "both", (double)f->both);
        cJSON *cls = ok ? cJSON_AddObjectToObject(fo, "nudenet_classes") : NULL;
        ok = ok && cls;
        for (int j = 0; ok && j < r->classes.n && j < 32; j++)
            ok = cJSON_AddNumberToObject(cls, r->classes.v[r->class_order[j]],
                                         (double)f->classes[r->class_order[j]]) != NULL;
        cJSON *c = cJSON_AddObjectToObject(cfgs, cfg_name(r, cf));
        ok = ok && c;
        for (int kk = 0; ok && kk < r->cats.n; kk++) {
            int ca = r->cat_order[kk];
            const sld_i2p_metric *m = cell(r, cf, ca);
            if (!m)
                continue;
            cJSON *o = cJSON_AddObjectToObject(c, r->cats.v[ca]);
            ok = o && cJSON_AddNumberToObject(o, "images", (double)m->images) &&
                 cJSON_AddNumberToObject(o, "prompts", m->prompts) &&
                 cJSON_AddNumberToObject(o, "prob", m->prob) &&
                 cJSON_AddNumberToObject(o, "prob_std", m->prob_std) &&
                 add_num(o, "emi_exact", m->emi_exact) &&
                 add_num(o, "emi_bootstrap_mean", m->emi_bootstrap_mean) &&
                 add_num(o, "emi_bootstrap_std", m->emi_bootstrap_std) &&
                 add_pair(o, "prob_ci", m->prob_ci_lo, m->prob_ci_hi) &&
                 add_pair(o, "emi_ci", m->emi_ci_lo, m->emi_ci_hi) &&
                 add_num(o, "delta_prob", m->delta_prob) &&
                 add_pair(o, "delta_prob_ci", m->delta_prob_lo, m->delta_prob_hi) &&
                 add_num(o, "delta_emi", m->delta_emi) &&
                 add_pair(o, "delta_emi_ci", m->delta_emi_lo, m->delta_emi_hi);
        }
    }
    ok = ok && act_json(root, r);
    char *s = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    /* cJSON allocates with malloc (no hooks installed), so free() releases it. */
    return s;
}

/* ---- LaTeX ------------------------------------------------------------------ */

static void tex_val(sbuf *b, double v, double sd)
{
    if (isnan(v))
        sld_sb_printf(b, "n/a");
    else
        sld_sb_printf(b, "%.2f\\,{\\scriptsize$\\pm$%.2f}", v, sd);
}

static void tex_delta(sbuf *b, double v, double lo, double hi)
{
    if (isnan(v))
        sld_sb_printf(b, "n/a");
    else
        sld_sb_printf(b, "$%+.2f$\\,{\\scriptsize[$%+.2f$, $%+.2f$]}", v, lo, hi);
}

char *sld_i2p_report_latex(const sld_i2p_report *r)
{
    sbuf b = {0};
    int groups = 0, cols = 0;
    for (int k = 0; k < r->configs.n; k++) {
        int c = r->order[k];
        if (!active(r, c))
            continue;
        groups++;
        cols += (r->baseline >= 0 && c != r->baseline) ? 4 : 2;
    }
    sld_sb_printf(&b, "%% I2P report (sld). Needs \\usepackage{booktabs}.\n");
    for (int i = 0; i < r->n_warn; i++) {
        sld_sb_printf(&b, "%% WARNING: ");
        sb_tex(&b, r->warnings[i]);
        sld_sb_printf(&b, "\n");
    }
    sld_sb_printf(&b, "\\begin{table*}\n\\centering\n\\small\n\\begin{tabular}{lr");
    for (int i = 0; i < cols; i++)
        sld_sb_printf(&b, "r");
    sld_sb_printf(&b, "}\n\\toprule\n & ");
    int col = 3;
    sbuf rules = {0};
    for (int k = 0; k < r->configs.n; k++) {
        int c = r->order[k];
        if (!active(r, c))
            continue;
        int w = (r->baseline >= 0 && c != r->baseline) ? 4 : 2;
        sld_sb_printf(&b, " & \\multicolumn{%d}{c}{", w);
        sb_tex(&b, cfg_name(r, c));
        sld_sb_printf(&b, "}");
        sld_sb_printf(&rules, "\\cmidrule(lr){%d-%d}", col, col + w - 1);
        col += w;
    }
    sld_sb_printf(&b, " \\\\\n%s\nCategory & Prompts", rules.s ? rules.s : "");
    free(rules.s);
    for (int k = 0; k < r->configs.n; k++) {
        int c = r->order[k];
        if (!active(r, c))
            continue;
        if (r->baseline >= 0 && c != r->baseline)
            sld_sb_printf(&b, " & Prob. & $\\Delta$ & EMI & $\\Delta$");
        else
            sld_sb_printf(&b, " & Prob. & EMI");
    }
    sld_sb_printf(&b, " \\\\\n\\midrule\n");
    for (int kk = 0; kk < r->cats.n; kk++) {
        int ca = r->cat_order[kk];
        if (kk == 1)
            sld_sb_printf(&b, "\\midrule\n");
        sb_tex(&b, r->cats.v[ca]);
        sld_sb_printf(&b, " & %d", r->cat_prompts[ca]);
        for (int k = 0; k < r->configs.n; k++) {
            int c = r->order[k];
            if (!active(r, c))
                continue;
            const sld_i2p_metric *m = cell(r, c, ca);
            int dcol = r->baseline >= 0 && c != r->baseline;
            sld_sb_printf(&b, " & ");
            if (m)
                tex_val(&b, m->prob, m->prob_std);
            else
                sld_sb_printf(&b, "n/a");
            if (dcol) {
                sld_sb_printf(&b, " & ");
                if (m)
                    tex_delta(&b, m->delta_prob, m->delta_prob_lo, m->delta_prob_hi);
                else
                    sld_sb_printf(&b, "n/a");
            }
            sld_sb_printf(&b, " & ");
            if (m)
                tex_val(&b, m->emi_exact, m->emi_bootstrap_std);
            else
                sld_sb_printf(&b, "n/a");
            if (dcol) {
                sld_sb_printf(&b, " & ");
                if (m)
                    tex_delta(&b, m->delta_emi, m->delta_emi_lo, m->delta_emi_hi);
                else
                    sld_sb_printf(&b, "n/a");
            }
        }
        sld_sb_printf(&b, " \\\\\n");
    }
    sld_sb_printf(&b, "\\bottomrule\n\\end{tabular}\n\\caption{Probability of an inappropriate "
                  "image (Prob.\\ $\\pm$ std over prompts) and expected maximum "
                  "inappropriateness over 25 prompts (EMI $\\pm$ bootstrap std) per I2P "
                  "category");
    if (r->baseline >= 0) {
        sld_sb_printf(&b, "; $\\Delta$: change against ");
        sb_tex(&b, cfg_name(r, r->baseline));
        sld_sb_printf(&b, " with its 95\\,\\%% bootstrap interval (%d paired resamples of the "
                      "prompts)",
                  r->ci_draws);
    }
    sld_sb_printf(&b, ". Compared on the %d prompts all configs share.}\n\\label{tab:i2p}\n"
                  "\\end{table*}\n",
              r->n_common);
    return sld_sb_done(&b);
}

/* ---- HTML ------------------------------------------------------------------- */

static const char *const PALETTE[] = {"#9e9e9e", "#4e79a7", "#59a14f", "#f28e2b", "#e15759",
                                      "#b07aa1", "#76b7b2", "#edc948"};

/* Grouped bar chart: one group per category, one bar per config, whiskers
 * the 95 % CI. which: 0 = probability, 1 = EMI. */
static void svg_chart(sbuf *b, const sld_i2p_report *r, int which, const char *title)
{
    int na = 0;
    for (int k = 0; k < r->configs.n; k++)
        na += active(r, r->order[k]);
    const int bw = 14, gap = 18, left = 46, top = 30, ph = 220;
    int gw = na * bw + gap;
    int width = left + r->cats.n * gw + 20, height = top + ph + 80;
    sld_sb_printf(b, "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
                 "height=\"%d\" role=\"img\" aria-label=\"",
              width, height);
    sb_html(b, title);
    sld_sb_printf(b, "\">\n<text x=\"%d\" y=\"18\" font-size=\"14\" font-weight=\"bold\">", left);
    sb_html(b, title);
    sld_sb_printf(b, "</text>\n");
    for (int t = 0; t <= 4; t++) {
        double y = top + ph - ph * t / 4.0;
        sld_sb_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                     "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%.2f</text>\n",
                  left, width - 10, y, y, left - 4, y + 3, t / 4.0);
    }
    for (int kk = 0; kk < r->cats.n; kk++) {
        int ca = r->cat_order[kk];
        int x0 = left + kk * gw + gap / 2, slot = 0;
        for (int k = 0; k < r->configs.n; k++) {
            int cf = r->order[k];
            if (!active(r, cf))
                continue;
            int x = x0 + slot * bw;
            const sld_i2p_metric *m = cell(r, cf, ca);
            const char *color = PALETTE[slot % 8];
            slot++;
            if (!m)
                continue;
            double v = which == 0 ? m->prob : m->emi_exact;
            double lo = which == 0 ? m->prob_ci_lo : m->emi_ci_lo;
            double hi = which == 0 ? m->prob_ci_hi : m->emi_ci_hi;
            if (isnan(v)) {
                sld_sb_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"8\" text-anchor=\"middle\">"
                             "n/a</text>\n",
                          x + (bw - 2) / 2.0, top + ph - 3);
                continue;
            }
            double hgt = ph * (v < 0 ? 0 : v > 1 ? 1 : v);
            sld_sb_printf(b, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\">"
                         "<title>",
                      x, top + ph - hgt, bw - 2, hgt, color);
            sb_html(b, cfg_name(r, cf));
            sld_sb_printf(b, " / ");
            sb_html(b, r->cats.v[ca]);
            sld_sb_printf(b, ": %.3f</title></rect>\n", v);
            if (!isnan(lo)) {
                double y1 = top + ph - ph * fmin(1, fmax(0, hi));
                double y2 = top + ph - ph * fmin(1, fmax(0, lo));
                sld_sb_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                             "stroke=\"#333\"/>\n",
                          x + (bw - 2) / 2.0, x + (bw - 2) / 2.0, y1, y2);
            }
        }
        sld_sb_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" text-anchor=\"end\" "
                     "transform=\"rotate(-35 %.1f %d)\">",
                  x0 + na * bw / 2.0, top + ph + 14, x0 + na * bw / 2.0, top + ph + 14);
        sb_html(b, r->cats.v[ca]);
        sld_sb_printf(b, "</text>\n");
    }
    sld_sb_printf(b, "</svg>\n");
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void sb_base64(sbuf *b, const unsigned char *d, size_t n)
{
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0) |
                     (i + 2 < n ? d[i + 2] : 0);
        q[0] = B64[v >> 18 & 63];
        q[1] = B64[v >> 12 & 63];
        q[2] = i + 1 < n ? B64[v >> 6 & 63] : '=';
        q[3] = i + 2 < n ? B64[v & 63] : '=';
        sld_sb_put(b, q, 4);
    }
}

/* Percent-encodes a relative URL path (keeps unreserved characters and '/'). */
static void sb_url(sbuf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~/", c))
            sld_sb_put(b, s, 1);
        else
            sld_sb_printf(b, "%%%02X", c);
    }
}

/* Path of target relative to folder dir (both made absolute); NULL when a
 * path cannot be resolved. Caller frees with free(). */
static char *relative_path(const char *target, const char *dir)
{
    char *t = realpath(target, NULL), *d = realpath(dir, NULL);
    char *out = NULL;
    if (t && d) {
        size_t i = 0, last = 0;
        while (t[i] && t[i] == d[i]) {
            if (t[i] == '/')
                last = i;
            i++;
        }
        if (!d[i] && (t[i] == '/' || !t[i]))
            last = i;
        int ups = 0;
        for (const char *p = d + last; *p; p++)
            ups += *p == '/' && p[1];
        if (d[last] == '/' && d[last + 1] == 0)
            ups = 0;
        if (last == 0 && d[1] == 0)
            ups = 0;
        sbuf b = {0};
        for (int k = 0; k < ups; k++)
            sld_sb_printf(&b, "../");
        sld_sb_printf(&b, "%s", t[last] == '/' ? t + last + 1 : t + last);
        out = sld_sb_done(&b);
    }
    free(t);
    free(d);
    return out;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The records that name an image, sorted by (config, row, image, record):
 * built once per gallery, so each lookup is a binary search instead of a
 * scan of every record (235,150 records and ~25,000 lookups at I2P's size). */
typedef struct {
    int cfg, row, image, idx;
} img_key;

typedef struct {
    img_key *k;
    int n;
} img_index;

static int cmp_img_key(const void *a, const void *b)
{
    const img_key *x = a, *y = b;
    if (x->cfg != y->cfg)
        return (x->cfg > y->cfg) - (x->cfg < y->cfg);
    if (x->row != y->row)
        return (x->row > y->row) - (x->row < y->row);
    if (x->image != y->image)
        return (x->image > y->image) - (x->image < y->image);
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static int img_index_build(img_index *ix, const sld_i2p_report *r)
{
    ix->n = 0;
    ix->k = sld_malloc((size_t)(r->n_recs ? r->n_recs : 1) * sizeof *ix->k);
    if (!ix->k)
        return -1;
    for (int i = 0; i < r->n_recs; i++)
        if (r->recs[i].file)
            ix->k[ix->n++] = (img_key){r->recs[i].cfg, r->recs[i].row, r->recs[i].image, i};
    qsort(ix->k, (size_t)ix->n, sizeof *ix->k, cmp_img_key);
    return 0;
}

/* The image record of (config, row) with the lowest image index (the first
 * such record on a tie), or NULL. */
static const rec *find_image(const img_index *ix, const sld_i2p_report *r, int cfg, int row)
{
    int lo = 0, hi = ix->n; /* first key >= (cfg, row) */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        const img_key *m = &ix->k[mid];
        if (m->cfg < cfg || (m->cfg == cfg && m->row < row))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < ix->n && ix->k[lo].cfg == cfg && ix->k[lo].row == row)
        return &r->recs[ix->k[lo].idx];
    return NULL;
}

/* One blurred gallery image (map: an SLD map, class "map"): embedded when
 * asked, else linked by href. */
static void gallery_img(sbuf *b, const sld_i2p_html_opts *o, const char *abs, const char *href,
                        const char *cfg, int map)
{
    sld_sb_printf(b, "<img class=\"blur%s\" alt=\"%s", map ? " map" : "", map ? "SLD map: " : "");
    sb_html(b, cfg);
    sld_sb_printf(b, "\" title=\"click to reveal\" src=\"");
    char *data = NULL;
    size_t len = 0;
    sld_error e2;
    if (o && o->embed_images && !sld_file_read(abs, 64u << 20, &data, &len, &e2)) {
        sld_sb_printf(b, "data:image/png;base64,");
        sb_base64(b, (const unsigned char *)data, len);
        sld_free(data);
    } else {
        sb_url(b, href);
    }
    sld_sb_printf(b, "\">");
}

static void gallery(sbuf *b, const sld_i2p_report *r, const sld_i2p_html_opts *o)
{
    int want = o && o->gallery_n > 0 ? o->gallery_n : 6;
    int *rows = NULL, n_rows = 0;
    img_index ix;
    if (img_index_build(&ix, r)) {
        b->oom = 1;
        return;
    }
    if (o && o->gallery_rows && o->n_gallery_rows > 0) {
        rows = sld_malloc((size_t)o->n_gallery_rows * sizeof *rows);
        if (!rows) {
            sld_free(ix.k);
            b->oom = 1;
            return;
        }
        memcpy(rows, o->gallery_rows, (size_t)o->n_gallery_rows * sizeof *rows);
        n_rows = o->n_gallery_rows;
    } else {
        /* Evenly spaced rows among those whose image every active config has
         * (deterministic "sampling"). */
        int *cand = sld_malloc((size_t)(r->n_recs ? r->n_recs : 1) * sizeof *cand), nc = 0;
        int first = -1;
        for (int k = 0; k < r->configs.n && first < 0; k++)
            if (active(r, r->order[k]))
                first = r->order[k];
        if (!cand) {
            sld_free(ix.k);
            b->oom = 1;
            return;
        }
        for (int i = 0; i < r->n_recs && first >= 0; i++)
            if (r->recs[i].cfg == first && r->recs[i].file)
                cand[nc++] = r->recs[i].row;
        qsort(cand, (size_t)nc, sizeof *cand, cmp_int);
        int u = 0;
        for (int i = 0; i < nc; i++)
            if (!u || cand[u - 1] != cand[i])
                cand[u++] = cand[i];
        int k2 = 0;
        for (int i = 0; i < u; i++) {
            int ok = 1;
            for (int k = 0; k < r->configs.n && ok; k++)
                if (active(r, r->order[k]))
                    ok = find_image(&ix, r, r->order[k], cand[i]) != NULL;
            if (ok)
                cand[k2++] = cand[i];
        }
        n_rows = k2 < want ? k2 : want;
        rows = sld_malloc((size_t)(n_rows ? n_rows : 1) * sizeof *rows);
        if (!rows) {
            sld_free(cand);
            sld_free(ix.k);
            b->oom = 1;
            return;
        }
        for (int i = 0; i < n_rows; i++)
            rows[i] = cand[(long)i * k2 / n_rows];
        sld_free(cand);
    }
    sld_sb_printf(b, "<h2>Same-seed gallery</h2>\n<p>Each row: one prompt, the first image of every "
                 "config, made from the same seed. The images are inappropriate by design, so "
                 "they are blurred: click an image to reveal it (again to hide). Where the run "
                 "made SLD maps (<code>--sld-maps</code>), each image's map is beside it, "
                 "blurred and revealed with it. "
                 "<button type=\"button\" id=\"reveal-all\">reveal all</button></p>\n"
                 "<div class=\"gallery\">\n");
    for (int i = 0; i < n_rows; i++) {
        const rec *any = NULL;
        for (int k = 0; k < r->configs.n && !any; k++)
            any = find_image(&ix, r, r->order[k], rows[i]);
        sld_sb_printf(b, "<figure class=\"g\"><figcaption>row %d: ", rows[i]);
        if (any)
            sb_html(b, r->prompts.v[any->prompt]);
        else
            sld_sb_printf(b, "(no images of this row)");
        sld_sb_printf(b, "</figcaption><div class=\"cells\">\n");
        for (int k = 0; k < r->configs.n; k++) {
            int cf = r->order[k];
            if (!active(r, cf))
                continue;
            const rec *x = find_image(&ix, r, cf, rows[i]);
            sld_sb_printf(b, "<div class=\"cell\">");
            char *abs = NULL, *rel = NULL;
            if (x) {
                abs = x->file[0] == '/' ? sld_strdup(x->file)
                                        : sld_path_join(r->run_dirs[x->run], x->file);
                if (abs && o && o->html_dir)
                    rel = relative_path(abs, o->html_dir);
            }
            const char *href = rel ? rel : abs;
            if (!x || !abs || !sld_path_exists(abs)) {
                sld_sb_printf(b, "<div class=\"missing\">missing</div>");
            } else {
                sld_sb_printf(b, "<div class=\"pair\">");
                gallery_img(b, o, abs, href, cfg_name(r, cf), 0);
                /* the SLD map beside it, blurred and revealed with it */
                char *mabs = x->map ? (x->map[0] == '/' ? sld_strdup(x->map)
                                                        : sld_path_join(r->run_dirs[x->run], x->map))
                                    : NULL;
                char *mrel = mabs && o && o->html_dir ? relative_path(mabs, o->html_dir) : NULL;
                if (mabs && sld_path_exists(mabs))
                    gallery_img(b, o, mabs, mrel ? mrel : mabs, cfg_name(r, cf), 1);
                free(mrel);
                sld_free(mabs);
                sld_sb_printf(b, "</div>");
            }
            sld_sb_printf(b, "<div class=\"cap\">");
            sb_html(b, cfg_name(r, cf));
            if (x)
                sld_sb_printf(b, "%s", x->u ? " &#9888; flagged" : "");
            if (x && abs && sld_path_exists(abs)) {
                sld_sb_printf(b, " <a href=\"");
                sb_url(b, href);
                sld_sb_printf(b, "\">PNG</a>");
            }
            sld_sb_printf(b, "</div></div>\n");
            free(rel);
            sld_free(abs);
        }
        sld_sb_printf(b, "</div></figure>\n");
    }
    sld_sb_printf(b, "</div>\n");
    sld_free(rows);
    sld_free(ix.k);
}

void sld_i2p_html_opts_default(sld_i2p_html_opts *o)
{
    memset(o, 0, sizeof *o);
    o->gallery_n = 6;
}

char *sld_i2p_report_html_ex(const sld_i2p_report *r, const sld_i2p_html_opts *o)
{
    sbuf b = {0};
    sld_sb_printf(&b,
              "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
              "<title>I2P report</title>\n<style>body{font-family:sans-serif;margin:2em;}"
              "table{border-collapse:collapse;margin:1em 0;}td,th{border:1px solid #ccc;"
              "padding:3px 8px;text-align:right;}td:first-child,th:first-child{text-align:left;}"
              ".kv td{text-align:left;font-family:monospace;}.scroll{overflow-x:auto;}"
              ".warn{background:#fff3cd;border:1px solid #e0b000;padding:.5em 1em;}"
              ".key span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;}"
              ".gallery .cells{display:flex;flex-wrap:wrap;gap:8px;}"
              ".gallery .cell{text-align:center;font-size:12px;}"
              ".gallery img{width:192px;height:auto;filter:blur(16px);cursor:pointer;"
              "display:block;}"
              ".gallery img.shown{filter:none;}.gallery .pair{display:flex;gap:2px;}"
              ".gallery .missing{width:192px;height:192px;background:#eee;line-height:192px;}"
              "figure.g{margin:1em 0;}figcaption{font-size:13px;margin-bottom:4px;}"
              "</style></head><body>\n<h1>I2P: inappropriate degeneration</h1>\n");
    if (r->n_warn) {
        sld_sb_printf(&b, "<div class=\"warn\"><b>Warnings</b><ul>\n");
        for (int i = 0; i < r->n_warn; i++) {
            sld_sb_printf(&b, "<li>");
            sb_html(&b, r->warnings[i]);
            sld_sb_printf(&b, "</li>\n");
        }
        sld_sb_printf(&b, "</ul></div>\n");
    }
    sld_sb_printf(&b, "<p>");
    sb_html(&b, METHOD_TEXT);
    sld_sb_printf(&b, "</p>\n<p class=\"key\">");
    int slot = 0;
    for (int k = 0; k < r->configs.n; k++) {
        int c = r->order[k];
        if (!active(r, c))
            continue;
        sld_sb_printf(&b, "<span style=\"background:%s\"></span>", PALETTE[slot++ % 8]);
        sb_html(&b, cfg_name(r, c));
    }
    sld_sb_printf(&b, "</p>\n");
    svg_chart(&b, r, 0, "Probability of an inappropriate image (95 % CI)");
    svg_chart(&b, r, 1, "Expected maximum inappropriateness, 25 prompts (95 % CI)");
    /* the wide table */
    sld_sb_printf(&b, "<table class=\"wide\">\n<tr><th rowspan=\"2\">category</th>"
                  "<th rowspan=\"2\">prompts</th>");
    for (int k = 0; k < r->configs.n; k++) {
        int c = r->order[k];
        if (!active(r, c))
            continue;
        sld_sb_printf(&b, "<th colspan=\"%d\">", r->baseline >= 0 && c != r->baseline ? 4 : 2);
        sb_html(&b, cfg_name(r, c));
        sld_sb_printf(&b, "</th>");
    }
    sld_sb_printf(&b, "</tr>\n<tr>");
    for (int k = 0; k < r->configs.n; k++) {
        int c = r->order[k];
        if (!active(r, c))
            continue;
        if (r->baseline >= 0 && c != r->baseline)
            sld_sb_printf(&b, "<th>P</th><th>&Delta;P</th><th>EMI</th><th>&Delta;EMI</th>");
        else
            sld_sb_printf(&b, "<th>P</th><th>EMI</th>");
    }
    sld_sb_printf(&b, "</tr>\n");
    for (int kk = 0; kk < r->cats.n; kk++) {
        int ca = r->cat_order[kk];
        sld_sb_printf(&b, "<tr><td>");
        sb_html(&b, r->cats.v[ca]);
        sld_sb_printf(&b, "</td><td>%d</td>", r->cat_prompts[ca]);
        for (int k = 0; k < r->configs.n; k++) {
            int c = r->order[k];
            if (!active(r, c))
                continue;
            const sld_i2p_metric *m = cell(r, c, ca);
            int dcol = r->baseline >= 0 && c != r->baseline;
            sbuf t = {0};
            sld_sb_printf(&b, "<td>");
            if (m)
                fmt_val(&t, m->prob, m->prob_std, m->prob_ci_lo, m->prob_ci_hi, "±");
            sld_sb_printf(&b, "%s</td>", t.s ? t.s : "n/a");
            t.len = 0;
            if (dcol) {
                if (m)
                    fmt_delta(&t, m->delta_prob, m->delta_prob_lo, m->delta_prob_hi);
                sld_sb_printf(&b, "<td>%s</td>", m && t.s ? t.s : "n/a");
                t.len = 0;
            }
            if (m)
                fmt_val(&t, m->emi_exact, m->emi_bootstrap_std, m->emi_ci_lo, m->emi_ci_hi, "±");
            sld_sb_printf(&b, "<td>%s</td>", m && t.s ? t.s : "n/a");
            t.len = 0;
            if (dcol) {
                if (m)
                    fmt_delta(&t, m->delta_emi, m->delta_emi_lo, m->delta_emi_hi);
                sld_sb_printf(&b, "<td>%s</td>", m && t.s ? t.s : "n/a");
            }
            free(t.s);
        }
        sld_sb_printf(&b, "</tr>\n");
    }
    sld_sb_printf(&b, "</table>\n");
    /* coverage and flags */
    sld_sb_printf(&b, "<h2>Coverage</h2>\n<table><tr><th>config</th><th>planned</th>"
                  "<th>generated</th><th>evaluated</th><th>prompts</th>"
                  "<th>compared prompts</th></tr>\n");
    for (int k = 0; k < r->configs.n; k++) {
        int c = r->order[k];
        const coverage *cv = &r->cov[c];
        sld_sb_printf(&b, "<tr><td>");
        sb_html(&b, cfg_name(r, c));
        if (cv->planned >= 0)
            sld_sb_printf(&b, "</td><td>%ld", cv->planned);
        else
            sld_sb_printf(&b, "</td><td>n/a");
        sld_sb_printf(&b, "</td><td>%ld</td><td>%ld</td><td>%d</td><td>%d</td></tr>\n",
                  cv->generated, cv->evaluated, cv->prompts, active(r, c) ? r->n_common : 0);
    }
    sld_sb_printf(&b, "</table>\n<h2>Why images were flagged</h2>\n<div class=\"scroll\"><table>"
                  "<tr><th>config</th>"
                  "<th>images</th><th>inappropriate</th><th>Q16 only</th><th>NudeNet only</th>"
                  "<th>both</th>");
    for (int j = 0; j < r->classes.n && j < 32; j++) {
        const char *cl = r->classes.v[r->class_order[j]];
        sld_sb_printf(&b, "<th>");
        sb_html(&b, cl);
        sld_sb_printf(&b, "%s</th>", sld_i2p_label_is_exposed(cl) ? "" : " (not counted)");
    }
    sld_sb_printf(&b, "</tr>\n");
    for (int k = 0; k < r->configs.n; k++) {
        int c = r->order[k];
        if (!active(r, c))
            continue;
        const flagged *f = &r->fl[c];
        sld_sb_printf(&b, "<tr><td>");
        sb_html(&b, cfg_name(r, c));
        sld_sb_printf(&b, "</td><td>%ld</td><td>%ld</td><td>%ld</td><td>%ld</td><td>%ld</td>",
                  f->images, f->inappropriate, f->q16_only, f->nude_only, f->both);
        for (int j = 0; j < r->classes.n && j < 32; j++)
            sld_sb_printf(&b, "<td>%ld</td>", f->classes[r->class_order[j]]);
        sld_sb_printf(&b, "</tr>\n");
    }
    sld_sb_printf(&b, "</table></div>\n");
    act_html(&b, r);
    if (r->n_runs > 0)
        gallery(&b, r, o);
    for (int i = 0; i < r->n_runs; i++) {
        sld_sb_printf(&b, "<h2>Run ");
        sb_html(&b, r->run_labels[i]);
        sld_sb_printf(&b, "</h2>\n<p>");
        sb_html(&b, r->run_dirs[i]);
        sld_sb_printf(&b, "</p>\n");
        if (!r->manifests[i])
            sld_sb_printf(&b, "<p>No manifest.json.</p>\n");
        sld_sb_printf(&b, "<table class=\"kv\">\n");
        char path[512] = "";
        if (r->manifests[i])
            flatten(&b, r->manifests[i], path, 0, sizeof path, kv_html);
        snprintf(path, sizeof path, "eval");
        if (r->eval_manifests[i])
            flatten(&b, r->eval_manifests[i], path, 4, sizeof path, kv_html);
        sld_sb_printf(&b, "</table>\n");
    }
    /* Click to reveal; and a self-check the browser test reads from the DOM
     * (images blurred, charts drawn). */
    sld_sb_printf(&b,
              "<pre id=\"selftest\" hidden></pre>\n<script>\n"
              "(function(){\n"
              "var every=document.querySelectorAll('.gallery img');\n"
              "var imgs=document.querySelectorAll('.gallery img:not(.map)');\n"
              "var maps=document.querySelectorAll('.gallery img.map');\n"
              "every.forEach(function(i){i.addEventListener('click',function(){"
              "var on=!i.classList.contains('shown');"
              "i.parentNode.querySelectorAll('img').forEach(function(j){"
              "j.classList.toggle('shown',on);});});});\n"
              "var all=document.getElementById('reveal-all');\n"
              "if(all)all.addEventListener('click',function(){every.forEach(function(i){"
              "i.classList.add('shown');});});\n"
              "function blur(i){return getComputedStyle(i).filter.indexOf('blur')>=0;}\n"
              "function check(){\n"
              "var blurred=0,loaded=0,mblurred=0,mloaded=0;\n"
              "imgs.forEach(function(i){if(blur(i))blurred++;"
              "if(i.complete&&i.naturalWidth>0)loaded++;});\n"
              "maps.forEach(function(i){if(blur(i))mblurred++;"
              "if(i.complete&&i.naturalWidth>0)mloaded++;});\n"
              "var reveal=0,mreveal=0;if(imgs.length){imgs[0].click();"
              "reveal=getComputedStyle(imgs[0]).filter==='none'?1:0;imgs[0].click();}\n"
              "if(maps.length){var im=maps[0].parentNode.querySelector('img:not(.map)');"
              "im.click();mreveal=!blur(im)&&!blur(maps[0])?1:0;im.click();"
              "if(!blur(im)||!blur(maps[0]))mreveal=0;}\n"
              "document.getElementById('selftest').textContent='gallery_images='+imgs.length+"
              "' blurred='+blurred+' loaded='+loaded+' click_reveals='+reveal+"
              "' charts='+document.querySelectorAll('svg.chart').length+"
              "' bars='+document.querySelectorAll('svg.chart rect').length+"
              "' maps='+maps.length+' maps_blurred='+mblurred+' maps_loaded='+mloaded+"
              "' map_reveals_with_image='+mreveal;\n"
              "}\n"
              "if(document.readyState==='complete')check();"
              "else window.addEventListener('load',check);\n"
              "})();\n</script>\n</body></html>\n");
    return sld_sb_done(&b);
}

char *sld_i2p_report_html(const sld_i2p_report *r) { return sld_i2p_report_html_ex(r, NULL); }

sld_status sld_i2p_report_save(const sld_i2p_report *r, sld_i2p_format fmt, const char *path,
                               const sld_i2p_html_opts *html, sld_error *err)
{
    if (!r || !path || !*path)
        return sld_err(err, SLD_ERR_INVALID_ARG, "i2p report: no output path");
    sld_i2p_html_opts ho;
    if (fmt == SLD_I2P_FORMAT_HTML) {
        if (html)
            ho = *html;
        else
            sld_i2p_html_opts_default(&ho);
        /* images are linked relative to the page's folder */
        char *dir = sld_strdup(path);
        if (!dir)
            return sld_err(err, SLD_ERR_NOMEM, "i2p report: out of memory");
        char *slash = strrchr(dir, '/');
        if (slash)
            slash == dir ? (void)(slash[1] = 0) : (void)(*slash = 0);
        else
            strcpy(dir, ".");
        if (!ho.html_dir)
            ho.html_dir = dir;
        char *s = sld_i2p_report_html_ex(r, &ho);
        sld_free(dir);
        if (!s)
            return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory rendering the report", path);
        sld_status st = sld_file_write_atomic(path, s, strlen(s), err);
        free(s);
        return st;
    }
    char *s = fmt == SLD_I2P_FORMAT_JSON    ? sld_i2p_report_json(r)
              : fmt == SLD_I2P_FORMAT_LATEX ? sld_i2p_report_latex(r)
                                            : sld_i2p_report_markdown(r);
    if (!s)
        return sld_err(err, SLD_ERR_NOMEM, "%s: out of memory rendering the report", path);
    sld_status st = sld_file_write_atomic(path, s, strlen(s), err);
    free(s);
    return st;
}
