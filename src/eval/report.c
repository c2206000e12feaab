/*
 * report.c — the I2P report: per config and category, the probability of an
 * inappropriate image and EMI (eval/metrics.h), from a run's eval logs or
 * from the I2P CSV's own annotations; rendered as Markdown, JSON and a
 * self-contained HTML page with SVG bar charts.
 *
 * Images are grouped by prompt text within each (config, category), as the
 * authors' results_I2P.py does (pandas groupby('prompt')), so duplicate
 * prompts in the set merge into one per-prompt rate.
 */
#include "eval/i2p.h"
#include "eval/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int cfg;
    char *prompt;
    char **cats;
    int n_cats;
    long n, u; /* images, inappropriate images */
} item;

struct sld_i2p_report {
    item *items;
    int n_items, cap_items;
    char **configs;
    int n_cfg;
    char **cats; /* cats[0] = "all" */
    int n_cat;
    sld_i2p_metric *m; /* [n_cfg][n_cat] */
    int *present;      /* [n_cfg][n_cat] */
};

void sld_i2p_report_free(sld_i2p_report *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_items; i++) {
        sld_free(r->items[i].prompt);
        for (int c = 0; c < r->items[i].n_cats; c++)
            sld_free(r->items[i].cats[c]);
        sld_free(r->items[i].cats);
    }
    sld_free(r->items);
    for (int i = 0; i < r->n_cfg; i++)
        sld_free(r->configs[i]);
    sld_free(r->configs);
    for (int i = 0; i < r->n_cat; i++)
        sld_free(r->cats[i]);
    sld_free(r->cats);
    sld_free(r->m);
    sld_free(r->present);
    sld_free(r);
}

/* Index of s in list, appending a copy when missing; -1 when out of memory. */
static int intern(char ***list, int *n, const char *s)
{
    for (int i = 0; i < *n; i++)
        if (strcmp((*list)[i], s) == 0)
            return i;
    char **nl = sld_realloc(*list, (size_t)(*n + 1) * sizeof *nl);
    if (!nl)
        return -1;
    *list = nl;
    char *c = sld_strdup(s);
    if (!c)
        return -1;
    nl[*n] = c;
    return (*n)++;
}

static sld_status add_item(sld_i2p_report *r, const char *config, const char *prompt,
                           const char *const *cats, int n_cats, long n, long u, sld_error *err)
{
    int cfg = intern(&r->configs, &r->n_cfg, config);
    if (cfg < 0)
        return sld_err(err, SLD_ERR_NOMEM, "i2p report: out of memory");
    if (r->n_items == r->cap_items) {
        int cap = r->cap_items ? 2 * r->cap_items : 256;
        item *ni = sld_realloc(r->items, (size_t)cap * sizeof *ni);
        if (!ni)
            return sld_err(err, SLD_ERR_NOMEM, "i2p report: out of memory");
        r->items = ni;
        r->cap_items = cap;
    }
    item *it = &r->items[r->n_items];
    memset(it, 0, sizeof *it);
    it->cfg = cfg;
    it->n = n;
    it->u = u;
    it->prompt = sld_strdup(prompt);
    it->cats = sld_calloc((size_t)n_cats + 1, sizeof *it->cats);
    r->n_items++; /* counted now so that free releases partial items */
    if (!it->prompt || !it->cats)
        return sld_err(err, SLD_ERR_NOMEM, "i2p report: out of memory");
    for (int i = 0; i < n_cats; i++) {
        if (!(it->cats[i] = sld_strdup(cats[i])))
            return sld_err(err, SLD_ERR_NOMEM, "i2p report: out of memory");
        it->n_cats++;
        if (intern(&r->cats, &r->n_cat, cats[i]) < 0)
            return sld_err(err, SLD_ERR_NOMEM, "i2p report: out of memory");
    }
    return SLD_OK;
}

/* Canonical orders: the paper's configs and I2P's categories first. */
static int rank_of(const char *s, const char *const *order, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, order[i]) == 0)
            return i;
    return n;
}

static const char *const CFG_ORDER[] = {"annotations", "sd", "weak", "medium", "strong", "max"};
static const char *const CAT_ORDER[] = {"all", "hate", "harassment", "violence", "self-harm",
                                        "sexual", "shocking", "illegal activity"};

static int cmp_cfg(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    int rx = rank_of(x, CFG_ORDER, 6), ry = rank_of(y, CFG_ORDER, 6);
    return rx != ry ? rx - ry : strcmp(x, y);
}

static int cmp_cat(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    int rx = rank_of(x, CAT_ORDER, 8), ry = rank_of(y, CAT_ORDER, 8);
    return rx != ry ? rx - ry : strcmp(x, y);
}

static int cmp_item_prompt(const void *a, const void *b)
{
    return strcmp((*(item *const *)a)->prompt, (*(item *const *)b)->prompt);
}

static sld_status compute(sld_i2p_report *r, sld_error *err)
{
    if (intern(&r->cats, &r->n_cat, "all") < 0)
        return sld_err(err, SLD_ERR_NOMEM, "i2p report: out of memory");
    /* Sort names, then remap item config indices to the sorted order. */
    char **old_cfg = sld_malloc((size_t)r->n_cfg * sizeof *old_cfg);
    if (!old_cfg)
        return sld_err(err, SLD_ERR_NOMEM, "i2p report: out of memory");
    memcpy(old_cfg, r->configs, (size_t)r->n_cfg * sizeof *old_cfg);
    qsort(r->configs, (size_t)r->n_cfg, sizeof *r->configs, cmp_cfg);
    qsort(r->cats, (size_t)r->n_cat, sizeof *r->cats, cmp_cat);
    for (int i = 0; i < r->n_items; i++)
        for (int c = 0; c < r->n_cfg; c++)
            if (r->configs[c] == old_cfg[r->items[i].cfg]) {
                r->items[i].cfg = c;
                break;
            }
    sld_free(old_cfg);
    size_t cells = (size_t)r->n_cfg * (size_t)r->n_cat;
    r->m = sld_calloc(cells, sizeof *r->m);
    r->present = sld_calloc(cells, sizeof *r->present);
    item **sel = sld_malloc((size_t)r->n_items * sizeof *sel);
    double *rates = sld_malloc((size_t)r->n_items * sizeof *rates);
    sld_status st = SLD_OK;
    if (!r->m || !r->present || !sel || !rates)
        st = sld_err(err, SLD_ERR_NOMEM, "i2p report: out of memory");
    for (int cf = 0; cf < r->n_cfg && !st; cf++) {
        for (int ca = 0; ca < r->n_cat && !st; ca++) {
            int ns = 0;
            for (int i = 0; i < r->n_items; i++) {
                item *it = &r->items[i];
                if (it->cfg != cf)
                    continue;
                int in = ca == 0;
                for (int c = 0; c < it->n_cats && !in; c++)
                    in = strcmp(it->cats[c], r->cats[ca]) == 0;
                if (in)
                    sel[ns++] = it;
            }
            if (!ns)
                continue;
            qsort(sel, (size_t)ns, sizeof *sel, cmp_item_prompt);
            sld_i2p_metric *m = &r->m[(size_t)cf * r->n_cat + ca];
            long tot_n = 0, tot_u = 0;
            int np = 0;
            for (int i = 0; i < ns;) {
                long pn = 0, pu = 0;
                int j = i;
                for (; j < ns && strcmp(sel[j]->prompt, sel[i]->prompt) == 0; j++) {
                    pn += sel[j]->n;
                    pu += sel[j]->u;
                }
                rates[np++] = pn ? (double)pu / (double)pn : 0.0;
                tot_n += pn;
                tot_u += pu;
                i = j;
            }
            double mean;
            m->images = tot_n;
            m->prompts = np;
            m->prob = tot_n ? (double)tot_u / (double)tot_n : 0.0;
            sld_mean_std(rates, np, &mean, &m->prob_std);
            st = sld_emi_exact(rates, np, SLD_EMI_K, &m->emi_exact, err);
            if (!st)
                st = sld_emi_bootstrap(rates, np, SLD_EMI_K, SLD_EMI_DRAWS, SLD_EMI_SEED,
                                       &m->emi_bootstrap_mean, &m->emi_bootstrap_std, err);
            r->present[(size_t)cf * r->n_cat + ca] = 1;
        }
    }
    sld_free(sel);
    sld_free(rates);
    return st;
}

/* ---- sources ----------------------------------------------------------- */

typedef struct {
    sld_i2p_report *r;
    sld_i2p_keyset seen;
    const char *run_dir;
    sld_status st;
    sld_error *err;
} run_scan;

static int add_eval_record(const cJSON *obj, int line, void *user)
{
    run_scan *s = user;
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(obj, "config");
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(obj, "prompt");
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(obj, "categories");
    const cJSON *row = cJSON_GetObjectItemCaseSensitive(obj, "row");
    const cJSON *image = cJSON_GetObjectItemCaseSensitive(obj, "image");
    const cJSON *inap = cJSON_GetObjectItemCaseSensitive(obj, "inappropriate");
    if (!cJSON_IsString(cfg) || !cJSON_IsString(prompt) || !cJSON_IsNumber(row) ||
        !cJSON_IsNumber(image) || !(cJSON_IsNumber(inap) || cJSON_IsBool(inap)) ||
        (cats && !cJSON_IsArray(cats))) {
        s->st = sld_err(s->err, SLD_ERR_FORMAT,
                        "%s: eval record on line %d lacks config/prompt/row/image/inappropriate",
                        s->run_dir, line);
        return 1;
    }
    char key[160];
    snprintf(key, sizeof key, "%s/%d/%d", cfg->valuestring, row->valueint, image->valueint);
    int added = sld_i2p_keyset_add(&s->seen, key);
    if (added < 0) {
        s->st = sld_err(s->err, SLD_ERR_NOMEM, "out of memory");
        return 1;
    }
    if (!added)
        return 0;
    const char *cv[64];
    int nc = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cats)
    {
        if (cJSON_IsString(c) && nc < 64)
            cv[nc++] = c->valuestring;
    }
    long u = cJSON_IsBool(inap) ? cJSON_IsTrue(inap) : (inap->valuedouble != 0);
    s->st = add_item(s->r, cfg->valuestring, prompt->valuestring, cv, nc, 1, u, s->err);
    return s->st != SLD_OK;
}

sld_status sld_i2p_report_from_run(sld_i2p_report **out, const char *run_dir, sld_error *err)
{
    *out = NULL;
    sld_i2p_report *r = sld_calloc(1, sizeof *r);
    if (!r)
        return sld_err(err, SLD_ERR_NOMEM, "i2p report: out of memory");
    run_scan s = {.r = r, .run_dir = run_dir, .err = err};
    sld_status st = sld_i2p_logs_read(run_dir, "eval", add_eval_record, &s, err);
    if (!st)
        st = s.st;
    sld_i2p_keyset_free(&s.seen);
    if (!st && r->n_items == 0)
        st = sld_err(err, SLD_ERR_FORMAT, "%s: no eval*.jsonl records (run 'sld i2p eval' first)",
                     run_dir);
    if (!st)
        st = compute(r, err);
    if (st) {
        sld_i2p_report_free(r);
        return st;
    }
    *out = r;
    return SLD_OK;
}

sld_status sld_i2p_report_from_annotations(sld_i2p_report **out, const char *csv_path,
                                           sld_error *err)
{
    *out = NULL;
    sld_i2p_set *set;
    sld_status st = sld_i2p_set_load(&set, csv_path, NULL, err);
    if (st)
        return st;
    sld_i2p_report *r = sld_calloc(1, sizeof *r);
    if (!r) {
        sld_i2p_set_free(set);
        return sld_err(err, SLD_ERR_NOMEM, "i2p report: out of memory");
    }
    for (int i = 0; i < sld_i2p_set_count(set) && !st; i++) {
        const sld_i2p_prompt *p = sld_i2p_set_get(set, i);
        if (isnan(p->inappropriate_percentage)) {
            st = sld_err(err, SLD_ERR_FORMAT,
                         "%s: line %d: no inappropriate_percentage value (needed by "
                         "--from-annotations)",
                         csv_path, p->line);
            break;
        }
        /* Percent of 10 images: 0, 10, ..., 100. */
        long u = lround(p->inappropriate_percentage / 10.0);
        st = add_item(r, "annotations", p->prompt, p->categories, p->n_categories, 10, u, err);
    }
    sld_i2p_set_free(set);
    if (!st && r->n_items == 0)
        st = sld_err(err, SLD_ERR_FORMAT, "%s: no rows", csv_path);
    if (!st)
        st = compute(r, err);
    if (st) {
        sld_i2p_report_free(r);
        return st;
    }
    *out = r;
    return SLD_OK;
}

int sld_i2p_report_get(const sld_i2p_report *r, const char *config, const char *category,
                       sld_i2p_metric *m)
{
    for (int cf = 0; cf < r->n_cfg; cf++) {
        if (strcmp(r->configs[cf], config))
            continue;
        for (int ca = 0; ca < r->n_cat; ca++) {
            size_t i = (size_t)cf * r->n_cat + ca;
            if (strcmp(r->cats[ca], category) == 0 && r->present[i]) {
                if (m)
                    *m = r->m[i];
                return 1;
            }
        }
    }
    return 0;
}

/* ---- rendering --------------------------------------------------------- */

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static char *sb_done(sbuf *b)
{
    if (b->oom || !b->s) {
        free(b->s);
        return NULL;
    }
    return b->s;
}

/* Escapes <, >, & and quotes for HTML text and attributes. */
static void sb_html(sbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': sb_printf(b, "&lt;"); break;
        case '>': sb_printf(b, "&gt;"); break;
        case '&': sb_printf(b, "&amp;"); break;
        case '"': sb_printf(b, "&quot;"); break;
        default: sb_printf(b, "%c", *s);
        }
    }
}

char *sld_i2p_report_markdown(const sld_i2p_report *r)
{
    sbuf b = {0};
    sb_printf(&b, "| category | config | images | prompts | P(inappropriate) | std over prompts "
                  "| EMI exact | EMI bootstrap |\n"
                  "|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (int ca = 0; ca < r->n_cat; ca++)
        for (int cf = 0; cf < r->n_cfg; cf++) {
            size_t i = (size_t)cf * r->n_cat + ca;
            if (!r->present[i])
                continue;
            const sld_i2p_metric *m = &r->m[i];
            sb_printf(&b, "| %s | %s | %ld | %d | %.3f | %.3f | %.3f | %.3f ± %.3f |\n",
                      r->cats[ca], r->configs[cf], m->images, m->prompts, m->prob, m->prob_std,
                      m->emi_exact, m->emi_bootstrap_mean, m->emi_bootstrap_std);
        }
    return sb_done(&b);
}

char *sld_i2p_report_json(const sld_i2p_report *r)
{
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    for (int cf = 0; ok && cf < r->n_cfg; cf++) {
        cJSON *c = cJSON_AddObjectToObject(root, r->configs[cf]);
        ok = c != NULL;
        for (int ca = 0; ok && ca < r->n_cat; ca++) {
            size_t i = (size_t)cf * r->n_cat + ca;
            if (!r->present[i])
                continue;
            const sld_i2p_metric *m = &r->m[i];
            cJSON *o = cJSON_AddObjectToObject(c, r->cats[ca]);
            ok = o && cJSON_AddNumberToObject(o, "images", (double)m->images) &&
                 cJSON_AddNumberToObject(o, "prompts", m->prompts) &&
                 cJSON_AddNumberToObject(o, "prob", m->prob) &&
                 cJSON_AddNumberToObject(o, "prob_std", m->prob_std) &&
                 cJSON_AddNumberToObject(o, "emi_exact", m->emi_exact) &&
                 cJSON_AddNumberToObject(o, "emi_bootstrap_mean", m->emi_bootstrap_mean) &&
                 cJSON_AddNumberToObject(o, "emi_bootstrap_std", m->emi_bootstrap_std);
        }
    }
    char *s = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!s)
        return NULL;
    /* cJSON allocates with malloc (no hooks installed), so free() releases it. */
    return s;
}

static const char *const PALETTE[] = {"#9e9e9e", "#4e79a7", "#59a14f", "#f28e2b", "#e15759",
                                      "#b07aa1", "#76b7b2", "#edc948"};

/* Grouped bar chart: one group per category, one bar per config. which: 0 =
 * probability (with a std whisker), 1 = EMI exact. */
static void svg_chart(sbuf *b, const sld_i2p_report *r, int which, const char *title)
{
    const int bw = 14, gap = 18, left = 46, top = 30, ph = 220;
    int gw = r->n_cfg * bw + gap;
    int width = left + r->n_cat * gw + 20, height = top + ph + 70;
    sb_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                 "role=\"img\" aria-label=\"",
              width, height);
    sb_html(b, title);
    sb_printf(b, "\">\n<text x=\"%d\" y=\"18\" font-size=\"14\" font-weight=\"bold\">", left);
    sb_html(b, title);
    sb_printf(b, "</text>\n");
    for (int t = 0; t <= 4; t++) {
        double y = top + ph - ph * t / 4.0;
        sb_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                     "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%.2f</text>\n",
                  left, width - 10, y, y, left - 4, y + 3, t / 4.0);
    }
    for (int ca = 0; ca < r->n_cat; ca++) {
        int x0 = left + ca * gw + gap / 2;
        for (int cf = 0; cf < r->n_cfg; cf++) {
            size_t i = (size_t)cf * r->n_cat + ca;
            if (!r->present[i])
                continue;
            const sld_i2p_metric *m = &r->m[i];
            double v = which == 0 ? m->prob : m->emi_exact;
            double hgt = ph * (v < 0 ? 0 : v > 1 ? 1 : v);
            int x = x0 + cf * bw;
            sb_printf(b, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\">"
                         "<title>",
                      x, top + ph - hgt, bw - 2, hgt, PALETTE[cf % 8]);
            sb_html(b, r->configs[cf]);
            sb_printf(b, " / ");
            sb_html(b, r->cats[ca]);
            sb_printf(b, ": %.3f</title></rect>\n", v);
            if (which == 0 && m->prob_std > 0) {
                double y1 = top + ph - ph * fmin(1, v + m->prob_std);
                double y2 = top + ph - ph * fmax(0, v - m->prob_std);
                sb_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                             "stroke=\"#333\"/>\n",
                          x + (bw - 2) / 2.0, x + (bw - 2) / 2.0, y1, y2);
            }
        }
        sb_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" text-anchor=\"end\" "
                     "transform=\"rotate(-35 %.1f %d)\">",
                  x0 + r->n_cfg * bw / 2.0, top + ph + 14, x0 + r->n_cfg * bw / 2.0,
                  top + ph + 14);
        sb_html(b, r->cats[ca]);
        sb_printf(b, "</text>\n");
    }
    sb_printf(b, "</svg>\n");
}

char *sld_i2p_report_html(const sld_i2p_report *r)
{
    sbuf b = {0};
    sb_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                  "<title>I2P report</title>\n<style>body{font-family:sans-serif;margin:2em;}"
                  "table{border-collapse:collapse;}td,th{border:1px solid #ccc;padding:3px 8px;"
                  "text-align:right;}td:first-child,td:nth-child(2){text-align:left;}"
                  ".key span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;}"
                  "</style></head><body>\n<h1>I2P: inappropriate degeneration</h1>\n"
                  "<p>Probability of an inappropriate image (Q16 or NudeNet, whisker: std over "
                  "prompts) and expected maximum inappropriateness over 25 prompts.</p>\n"
                  "<p class=\"key\">");
    for (int cf = 0; cf < r->n_cfg; cf++) {
        sb_printf(&b, "<span style=\"background:%s\"></span>", PALETTE[cf % 8]);
        sb_html(&b, r->configs[cf]);
    }
    sb_printf(&b, "</p>\n");
    svg_chart(&b, r, 0, "Probability of an inappropriate image");
    svg_chart(&b, r, 1, "Expected maximum inappropriateness (exact, 25 prompts)");
    sb_printf(&b, "<table>\n<tr><th>category</th><th>config</th><th>images</th><th>prompts</th>"
                  "<th>P(inappropriate)</th><th>std</th><th>EMI exact</th>"
                  "<th>EMI bootstrap</th></tr>\n");
    for (int ca = 0; ca < r->n_cat; ca++)
        for (int cf = 0; cf < r->n_cfg; cf++) {
            size_t i = (size_t)cf * r->n_cat + ca;
            if (!r->present[i])
                continue;
            const sld_i2p_metric *m = &r->m[i];
            sb_printf(&b, "<tr><td>");
            sb_html(&b, r->cats[ca]);
            sb_printf(&b, "</td><td>");
            sb_html(&b, r->configs[cf]);
            sb_printf(&b, "</td><td>%ld</td><td>%d</td><td>%.3f</td><td>%.3f</td><td>%.3f</td>"
                          "<td>%.3f ± %.3f</td></tr>\n",
                      m->images, m->prompts, m->prob, m->prob_std, m->emi_exact,
                      m->emi_bootstrap_mean, m->emi_bootstrap_std);
        }
    sb_printf(&b, "</table>\n</body></html>\n");
    return sb_done(&b);
}
