/*
 * server.c — `sld serve`: an A1111-compatible HTTP API over libmicrohttpd.
 *
 * Threads: libmicrohttpd runs one thread per connection (bounded by
 * max_connections); one worker thread owns the sld_ctx and runs txt2img jobs
 * one at a time. A connection thread parses the body (request.c), puts a job
 * on the queue (or answers 503 when queue jobs already wait) and sleeps until
 * the worker marks the job done; then it sends the response the worker
 * built. The progress callback publishes the step and returns the interrupt
 * flag, so /sdapi/v1/interrupt stops the running job between UNet calls.
 *
 * Invariants: every field below marked (mu) is read and written under mu; a
 * job belongs to its connection thread, which frees it after the worker set
 * done (the worker never touches it afterwards). Memory per request is
 * bounded by max_body and the limits; the queue by opts.queue.
 */
#include "serve/serve.h"

#include "core/core.h"
#include "io/png.h"
#include "pipeline/model.h"
#include "sample/sched.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void sld_server_opts_default(sld_server_opts *o)
{
    memset(o, 0, sizeof *o);
    o->listen = "127.0.0.1:7860";
    o->queue = 4;
    o->default_safety = SLD_SAFETY_MEDIUM;
    o->min_safety = SLD_SAFETY_OFF;
    o->safety_checker = 1;
    o->max_pixels = 1024 * 1024;
    o->max_steps = 150;
    o->max_images = 8;
    o->max_prompt = 4096;
    o->max_body = 65536;
    o->timeout_s = 30;
    o->max_connections = 64;
}

typedef struct job {
    sld_serve_request req;
    int done;      /* (mu) set by the worker or by stop */
    int http;      /* status to answer */
    char *body;    /* response JSON (malloc), owned by the job until sent */
    struct job *next;
} job;

/* HTTP status codes counted for /metrics. */
static const int CODES[] = {200, 204, 400, 401, 404, 405, 413, 500, 503};
#define N_CODES (int)(sizeof CODES / sizeof *CODES)

struct sld_server {
    sld_model *m;
    sld_ctx *ctx;
    sld_server_opts o;
    char *s_listen, *s_key, *s_cors, *s_concept; /* owned copies of o's strings */
    struct MHD_Daemon *d;
    int port;
    pthread_t worker;
    int worker_started;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    job *head, *tail;   /* (mu) waiting jobs */
    int n_queued;       /* (mu) */
    job *running;       /* (mu) */
    int stopping;       /* (mu) */
    atomic_int interrupt;
    /* progress of the running job (mu) */
    int iter, n_iter, step, n_steps;
    double t_start, t_last_step;
    time_t job_time;
    int was_interrupted;
    /* metrics (mu) */
    unsigned long req_by_code[N_CODES + 1]; /* last slot: other codes */
    unsigned long images_total, steps_total, jobs_total;
    double step_seconds, job_seconds;
};

/* ---- responses --------------------------------------------------------- */

static void count_code(sld_server *s, int code)
{
    int k = 0;
    while (k < N_CODES && CODES[k] != code)
        k++;
    pthread_mutex_lock(&s->mu);
    s->req_by_code[k]++;
    pthread_mutex_unlock(&s->mu);
}

/* Sends body (malloc'd, taken over; NULL = empty) with status and type. */
static enum MHD_Result send_owned(sld_server *s, struct MHD_Connection *c, int status,
                                  const char *type, char *body, size_t len,
                                  const char *retry_after)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(body ? len : 0, body ? body : (void *)"",
                                        body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    if (type)
        MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (s->o.cors_origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", s->o.cors_origin);
        MHD_add_response_header(r, "Vary", "Origin");
    }
    if (retry_after)
        MHD_add_response_header(r, "Retry-After", retry_after);
    if (status == 401)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    count_code(s, status);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_json(sld_server *s, struct MHD_Connection *c, int status, cJSON *j,
                                 const char *retry_after)
{
    char *txt = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!txt)
        return send_owned(s, c, 500, "text/plain", strdup("out of memory\n"), 14, NULL);
    return send_owned(s, c, status, "application/json", txt, strlen(txt), retry_after);
}

/* A1111's error shape ({"error", "detail"}) plus the limit's name when a
 * limit refused the request. */
static cJSON *error_json(const char *kind, const char *detail, const char *limit)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    cJSON_AddStringToObject(j, "error", kind);
    cJSON_AddStringToObject(j, "detail", detail);
    if (limit && *limit)
        cJSON_AddStringToObject(j, "limit", limit);
    return j;
}

/* The same as a malloc'd JSON text (NULL when out of memory). */
static char *error_text(const char *kind, const char *detail)
{
    cJSON *j = error_json(kind, detail, NULL);
    char *t = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return t;
}

static enum MHD_Result send_error(sld_server *s, struct MHD_Connection *c, int status,
                                  const char *detail, const char *limit)
{
    const char *kind = status == 400   ? "Bad Request"
                       : status == 401 ? "Unauthorized"
                       : status == 404 ? "Not Found"
                       : status == 405 ? "Method Not Allowed"
                       : status == 413 ? "Payload Too Large"
                       : status == 503 ? "Service Unavailable"
                                       : "Internal Server Error";
    return send_json(s, c, status, error_json(kind, detail, limit), NULL);
}

/* ---- generation (worker thread) ---------------------------------------- */

static int on_progress(int step, int n_steps, double secs, void *user)
{
    sld_server *s = user;
    pthread_mutex_lock(&s->mu);
    double now = sld_time_now();
    s->step_seconds += now - s->t_last_step;
    s->t_last_step = now;
    s->steps_total++;
    s->step = step;
    s->n_steps = n_steps;
    pthread_mutex_unlock(&s->mu);
    (void)secs;
    return atomic_load(&s->interrupt);
}

/* The same PNG bytes sld_png_write puts in a file (same encoder, same chunk). */
static char *png_base64(const uint8_t *rgb, int w, int h, const char *params, sld_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        sld_err(err, SLD_ERR_NOMEM, "out of memory for a PNG");
        return NULL;
    }
    sld_png_text t = {"parameters", params};
    sld_status st = sld_png_write_stream(f, "response PNG", rgb, w, h, &t, params ? 1 : 0, err);
    fclose(f);
    char *b64 = st ? NULL : sld_serve_base64((const uint8_t *)buf, len);
    if (!st && !b64)
        sld_err(err, SLD_ERR_NOMEM, "out of memory for a PNG");
    free(buf);
    return b64;
}

/* The sampler a request without sampler_name gets: the model's scheduler. */
static sld_sampler model_sampler(const sld_model *m, sld_sampler s)
{
    if (s != SLD_SAMPLER_DEFAULT || !m->sched_cfg.root)
        return s;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(m->sched_cfg.root, "_class_name");
    for (int k = SLD_SAMPLER_PNDM; cJSON_IsString(c) && k < SLD_SAMPLER_DEFAULT; k++)
        if (!strcmp(c->valuestring, sld_sampler_class((sld_sampler)k)))
            return (sld_sampler)k;
    return s;
}

static cJSON *params_json(const sld_model *m, const sld_serve_request *q,
                          const sld_gen_params *p, int w, int h)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    cJSON_AddStringToObject(j, "prompt", p->prompt);
    cJSON_AddStringToObject(j, "negative_prompt", p->negative_prompt ? p->negative_prompt : "");
    cJSON_AddNumberToObject(j, "steps", p->steps);
    cJSON_AddNumberToObject(j, "cfg_scale", p->cfg);
    cJSON_AddNumberToObject(j, "seed", (double)q->p.seed);
    cJSON_AddNumberToObject(j, "width", w);
    cJSON_AddNumberToObject(j, "height", h);
    cJSON_AddStringToObject(j, "sampler_name",
                            sld_serve_sampler_name(model_sampler(m, p->sampler), p->karras));
    cJSON_AddNumberToObject(j, "batch_size", p->n_images);
    cJSON_AddNumberToObject(j, "n_iter", q->n_iter);
    cJSON_AddNumberToObject(j, "eta", p->eta);
    cJSON_AddStringToObject(j, "safety", sld_serve_preset_name(q->preset));
    cJSON_AddStringToObject(j, "safety_concept",
                            p->safety_concept ? p->safety_concept : SLD_DEFAULT_SAFETY_CONCEPT);
    cJSON_AddNumberToObject(j, "sld_guidance_scale", p->sld.guidance_scale);
    cJSON_AddNumberToObject(j, "sld_warmup_steps", p->sld.warmup_steps);
    cJSON_AddNumberToObject(j, "sld_threshold", p->sld.threshold);
    cJSON_AddNumberToObject(j, "sld_momentum_scale", p->sld.momentum_scale);
    cJSON_AddNumberToObject(j, "sld_mom_beta", p->sld.mom_beta);
    return j;
}

/* What SLD did to one image (docs/TELEMETRY.md, sld_safety_summary); null
 * when the generation gave no summary. */
static cJSON *activity_json(const sld_safety_summary *a)
{
    if (!a)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    if (o && (!cJSON_AddNumberToObject(o, "steered_share", a->steered_share) ||
              !cJSON_AddNumberToObject(o, "peak_share", a->peak_share) ||
              !cJSON_AddNumberToObject(o, "peak_step", a->peak_step) ||
              !cJSON_AddNumberToObject(o, "steps_steered", a->steps_steered) ||
              !cJSON_AddNumberToObject(o, "mean_scale", a->mean_scale) ||
              !cJSON_AddNumberToObject(o, "safety_total", a->safety_total))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Image i's SLD map as a base64 PNG: the summed map rendered at the image's
 * size on its own scale (sld_safety_map_render, vmax 0), with the image's
 * parameters and the scale in its text, as `sld generate --sld-map` writes
 * it. NULL (err set) on failure. */
static char *map_base64(const sld_gen_result *r, int i, const char *params, sld_error *err)
{
    const int mw = r->width / 8, mh = r->height / 8;
    if (!r->safety_map) {
        sld_err(err, SLD_ERR_INTERNAL, "the generation gave no SLD map");
        return NULL;
    }
    const float *map = r->safety_map + (size_t)i * (size_t)mw * mh;
    float vmax = 0;
    for (size_t k = 0; k < (size_t)mw * mh; k++)
        vmax = map[k] > vmax ? map[k] : vmax;
    size_t tl = strlen(params ? params : "") + 160;
    uint8_t *rgb = malloc((size_t)r->width * r->height * 3);
    char *text = malloc(tl), *b64 = NULL;
    if (!rgb || !text) {
        sld_err(err, SLD_ERR_NOMEM, "out of memory");
    } else {
        snprintf(text, tl, "%s, SLD map: sum over steps of the applied safety term's norm, "
                 "SLD map max: %g", params ? params : "", (double)vmax);
        if (!sld_safety_map_render(map, mw, mh, 0, NULL, r->width, r->height, rgb, err))
            b64 = png_base64(rgb, r->width, r->height, text, err);
    }
    free(rgb);
    free(text);
    return b64;
}

static void run_job(sld_server *s, job *jb)
{
    sld_serve_request *q = &jb->req;
    sld_error err = {0};
    cJSON *images = cJSON_CreateArray(), *seeds = cJSON_CreateArray();
    cJSON *texts = cJSON_CreateArray(), *nsfw = cJSON_CreateArray();
    cJSON *acts = cJSON_CreateArray(), *maps = q->sld_map ? cJSON_CreateArray() : NULL;
    cJSON *out = cJSON_CreateObject(), *info = cJSON_CreateObject();
    sld_gen_params p = q->p;
    int w = 0, h = 0, interrupted = 0, n_made = 0, fail_http = 0;
    double gen_seconds = 0; /* inside sld_generate: the rest is the service's overhead */
    double t0 = sld_time_now();
    if (!images || !seeds || !texts || !nsfw || !acts || (q->sld_map && !maps) || !out ||
        !info) {
        fail_http = 500;
        sld_err(&err, SLD_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < q->n_iter && !fail_http; k++) {
        p.seed = q->p.seed + (uint64_t)k * (uint64_t)q->p.n_images;
        p.progress = on_progress;
        p.progress_user = s;
        pthread_mutex_lock(&s->mu);
        s->iter = k;
        s->step = 0;
        pthread_mutex_unlock(&s->mu);
        sld_gen_result r = {0};
        sld_status st = sld_generate(s->ctx, &p, &r, &err);
        if (st == SLD_ERR_CANCELLED) {
            interrupted = 1;
            break;
        }
        if (st) {
            fail_http = st == SLD_ERR_INVALID_ARG ? 400 : 500;
            break;
        }
        w = r.width;
        h = r.height;
        gen_seconds += r.seconds;
        char *text = sld_gen_params_text(&p, s->m, p.seed);
        for (int i = 0; i < r.n && !fail_http; i++) {
            if (q->send_images) {
                char *b64 = png_base64(r.pixels + (size_t)i * r.width * r.height * 3, r.width,
                                       r.height, text, &err);
                if (!b64) {
                    fail_http = 500;
                    break;
                }
                cJSON_AddItemToArray(images, cJSON_CreateString(b64));
                free(b64);
            }
            if (maps) {
                char *b64 = map_base64(&r, i, text, &err);
                if (!b64) {
                    fail_http = 500;
                    break;
                }
                cJSON_AddItemToArray(maps, cJSON_CreateString(b64));
                free(b64);
            }
            cJSON_AddItemToArray(acts, activity_json(r.summary ? &r.summary[i] : NULL));
            cJSON_AddItemToArray(seeds, cJSON_CreateNumber((double)p.seed));
            cJSON_AddItemToArray(texts, cJSON_CreateString(text ? text : ""));
            cJSON_AddItemToArray(nsfw, cJSON_CreateBool(r.nsfw && r.nsfw[i]));
            n_made++;
        }
        sld_free(text);
        sld_gen_result_free(&r);
    }
    double secs = sld_time_now() - t0;
    pthread_mutex_lock(&s->mu);
    s->images_total += (unsigned long)n_made;
    s->jobs_total++;
    s->job_seconds += secs;
    pthread_mutex_unlock(&s->mu);

    if (fail_http) {
        cJSON_Delete(images);
        cJSON_Delete(seeds);
        cJSON_Delete(texts);
        cJSON_Delete(nsfw);
        cJSON_Delete(acts);
        cJSON_Delete(maps);
        cJSON_Delete(out);
        cJSON_Delete(info);
        jb->http = fail_http;
        jb->body = error_text(fail_http == 400 ? "Bad Request" : "Internal Server Error",
                              err.msg[0] ? err.msg : "generation failed");
        return;
    }
    if (!w) { /* interrupted before the first batch finished: the requested size */
        w = p.width ? p.width : s->m->default_size;
        h = p.height ? p.height : s->m->default_size;
    }
    p.seed = q->p.seed;
    cJSON_AddItemToObject(out, "images", images);
    if (maps)
        cJSON_AddItemToObject(out, "sld_maps", maps);
    cJSON_AddItemToObject(out, "parameters", params_json(s->m, q, &p, w, h));
    cJSON_AddStringToObject(info, "prompt", p.prompt);
    cJSON_AddStringToObject(info, "negative_prompt", p.negative_prompt ? p.negative_prompt : "");
    cJSON_AddNumberToObject(info, "seed", (double)q->p.seed);
    cJSON_AddItemToObject(info, "all_seeds", seeds);
    cJSON_AddNumberToObject(info, "width", w);
    cJSON_AddNumberToObject(info, "height", h);
    cJSON_AddStringToObject(info, "sampler_name",
                            sld_serve_sampler_name(model_sampler(s->m, p.sampler), p.karras));
    cJSON_AddNumberToObject(info, "cfg_scale", p.cfg);
    cJSON_AddNumberToObject(info, "steps", p.steps);
    cJSON_AddNumberToObject(info, "batch_size", p.n_images);
    cJSON_AddNumberToObject(info, "n_iter", q->n_iter);
    cJSON_AddStringToObject(info, "sd_model_name", s->m->name ? s->m->name : "");
    cJSON_AddItemToObject(info, "infotexts", texts);
    cJSON_AddItemToObject(info, "nsfw", nsfw);
    cJSON_AddItemToObject(info, "sld_activity", acts);
    cJSON_AddStringToObject(info, "safety", sld_serve_preset_name(q->preset));
    cJSON_AddStringToObject(info, "safety_requested", sld_serve_preset_name(q->preset_asked));
    cJSON_AddStringToObject(info, "safety_policy",
                            q->preset != q->preset_asked ? "raised" : "as requested");
    cJSON_AddBoolToObject(info, "sld_custom", q->sld_custom);
    cJSON_AddStringToObject(info, "safety_concept", p.safety_concept ? p.safety_concept
                                                                     : SLD_DEFAULT_SAFETY_CONCEPT);
    cJSON_AddItemToObject(info, "sld", params_json(s->m, q, &p, w, h));
    cJSON *notes = cJSON_AddArrayToObject(info, "policy_notes");
    for (int i = 0; notes && i < q->n_notes; i++)
        cJSON_AddItemToArray(notes, cJSON_CreateString(q->notes[i]));
    cJSON *ign = cJSON_AddArrayToObject(info, "ignored_fields");
    for (int i = 0; ign && i < q->n_ignored; i++)
        cJSON_AddItemToArray(ign, cJSON_CreateString(q->ignored[i]));
    cJSON_AddBoolToObject(info, "interrupted", interrupted);
    cJSON_AddNumberToObject(info, "seconds", secs);
    cJSON_AddNumberToObject(info, "generate_seconds", gen_seconds);
    char *info_txt = cJSON_PrintUnformatted(info);
    cJSON_Delete(info);
    cJSON_AddStringToObject(out, "info", info_txt ? info_txt : "{}");
    free(info_txt);
    jb->http = 200;
    jb->body = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
}

static void *worker_main(void *arg)
{
    sld_server *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->cv_work, &s->mu);
        if (s->stopping)
            break;
        job *jb = s->head;
        s->head = jb->next;
        if (!s->head)
            s->tail = NULL;
        s->n_queued--;
        s->running = jb;
        atomic_store(&s->interrupt, 0);
        s->was_interrupted = 0;
        s->iter = 0;
        s->n_iter = jb->req.n_iter;
        s->step = 0;
        s->n_steps = jb->req.p.steps;
        s->t_start = s->t_last_step = sld_time_now();
        s->job_time = time(NULL);
        pthread_mutex_unlock(&s->mu);

        run_job(s, jb);

        pthread_mutex_lock(&s->mu);
        s->running = NULL;
        jb->done = 1;
        pthread_cond_broadcast(&s->cv_done);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- endpoints --------------------------------------------------------- */

static enum MHD_Result do_txt2img(sld_server *s, struct MHD_Connection *c, const char *body,
                                  size_t len)
{
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        rnd = (uint32_t)time(NULL) ^ (uint32_t)getpid();
    job *jb = calloc(1, sizeof *jb);
    if (!jb)
        return send_error(s, c, 500, "out of memory", NULL);
    char msg[384], limit[32];
    int code = sld_serve_parse_txt2img(body, len, &s->o, s->m->default_size, rnd, &jb->req, msg,
                                       sizeof msg, limit, sizeof limit);
    if (code) {
        free(jb);
        return send_error(s, c, code, msg, limit);
    }
    pthread_mutex_lock(&s->mu);
    /* room for the running job plus `queue` waiting ones */
    if (s->stopping || s->n_queued + (s->running != NULL) > s->o.queue) {
        int stopping = s->stopping, waiting = s->n_queued + (s->running != NULL);
        double per_job = s->jobs_total ? s->job_seconds / (double)s->jobs_total : 1.0;
        pthread_mutex_unlock(&s->mu);
        sld_serve_request_free(&jb->req);
        free(jb);
        char ra[32];
        snprintf(ra, sizeof ra, "%d", (int)fmin(3600, fmax(1, ceil(per_job * waiting))));
        if (stopping)
            snprintf(msg, sizeof msg, "the server is shutting down");
        else
            snprintf(msg, sizeof msg,
                     "the queue is full (%d waiting, operator limit queue = %d); retry later",
                     waiting, s->o.queue);
        return send_json(s, c, 503, error_json("Service Unavailable", msg, stopping ? "" : "queue"),
                         ra);
    }
    if (s->tail)
        s->tail->next = jb;
    else
        s->head = jb;
    s->tail = jb;
    s->n_queued++;
    pthread_cond_signal(&s->cv_work);
    while (!jb->done)
        pthread_cond_wait(&s->cv_done, &s->mu);
    pthread_mutex_unlock(&s->mu);
    int http = jb->http;
    char *out = jb->body;
    sld_serve_request_free(&jb->req);
    free(jb);
    if (!out)
        return send_error(s, c, 500, "out of memory", NULL);
    return send_owned(s, c, http, "application/json", out, strlen(out), NULL);
}

static enum MHD_Result do_progress(sld_server *s, struct MHD_Connection *c)
{
    cJSON *j = cJSON_CreateObject(), *st = cJSON_CreateObject();
    if (!j || !st) {
        cJSON_Delete(j);
        cJSON_Delete(st);
        return send_error(s, c, 500, "out of memory", NULL);
    }
    pthread_mutex_lock(&s->mu);
    int busy = s->running != NULL;
    double progress = 0, eta = 0;
    if (busy && s->n_steps > 0 && s->n_iter > 0) {
        progress = ((double)s->iter * s->n_steps + s->step) / ((double)s->n_iter * s->n_steps);
        double el = sld_time_now() - s->t_start;
        if (progress > 0)
            eta = el / progress - el;
    }
    char ts[32] = "0";
    if (busy) {
        struct tm tm;
        gmtime_r(&s->job_time, &tm);
        strftime(ts, sizeof ts, "%Y%m%d%H%M%S", &tm);
    }
    cJSON_AddBoolToObject(st, "skipped", 0);
    cJSON_AddBoolToObject(st, "interrupted", busy && atomic_load(&s->interrupt));
    cJSON_AddStringToObject(st, "job", busy ? "txt2img" : "");
    cJSON_AddNumberToObject(st, "job_count", s->n_queued + busy);
    cJSON_AddStringToObject(st, "job_timestamp", ts);
    cJSON_AddNumberToObject(st, "job_no", busy ? s->iter : 0);
    cJSON_AddNumberToObject(st, "sampling_step", busy ? s->step : 0);
    cJSON_AddNumberToObject(st, "sampling_steps", busy ? s->n_steps : 0);
    cJSON_AddNumberToObject(st, "queue_length", s->n_queued);
    pthread_mutex_unlock(&s->mu);
    cJSON_AddNumberToObject(j, "progress", progress);
    cJSON_AddNumberToObject(j, "eta_relative", eta);
    cJSON_AddItemToObject(j, "state", st);
    cJSON_AddNullToObject(j, "current_image");
    cJSON_AddNullToObject(j, "textinfo");
    return send_json(s, c, 200, j, NULL);
}

static enum MHD_Result do_interrupt(sld_server *s, struct MHD_Connection *c)
{
    pthread_mutex_lock(&s->mu);
    int busy = s->running != NULL;
    if (busy)
        atomic_store(&s->interrupt, 1);
    pthread_mutex_unlock(&s->mu);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddBoolToObject(j, "interrupted", busy);
    return send_json(s, c, 200, j, NULL);
}

static enum MHD_Result do_models(sld_server *s, struct MHD_Connection *c)
{
    cJSON *a = cJSON_CreateArray(), *m = cJSON_CreateObject();
    const char *name = s->m->name ? s->m->name : "model";
    /* the model's name only: no server path is ever revealed */
    cJSON_AddStringToObject(m, "title", name);
    cJSON_AddStringToObject(m, "model_name", name);
    cJSON_AddNullToObject(m, "hash");
    cJSON_AddNullToObject(m, "sha256");
    cJSON_AddStringToObject(m, "filename", name);
    cJSON_AddNullToObject(m, "config");
    cJSON_AddItemToArray(a, m);
    return send_json(s, c, 200, a, NULL);
}

static enum MHD_Result do_samplers(sld_server *s, struct MHD_Connection *c)
{
    static const struct {
        sld_sampler s;
        int karras;
        const char *alias;
    } L[] = {{SLD_SAMPLER_PNDM, 0, "pndm"},           {SLD_SAMPLER_DDIM, 0, "ddim"},
             {SLD_SAMPLER_EULER, 0, "euler"},         {SLD_SAMPLER_EULER_A, 0, "euler_a"},
             {SLD_SAMPLER_LMS, 0, "lms"},             {SLD_SAMPLER_DPMPP_2M, 0, "dpmpp_2m"},
             {SLD_SAMPLER_DPMPP_2M, 1, "dpmpp_2m_karras"}};
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < sizeof L / sizeof *L; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", sld_serve_sampler_name(L[i].s, L[i].karras));
        cJSON *al = cJSON_AddArrayToObject(e, "aliases");
        cJSON_AddItemToArray(al, cJSON_CreateString(L[i].alias));
        cJSON_AddObjectToObject(e, "options");
        cJSON_AddItemToArray(a, e);
    }
    return send_json(s, c, 200, a, NULL);
}

static enum MHD_Result do_options(sld_server *s, struct MHD_Connection *c)
{
    cJSON *j = cJSON_CreateObject();
    const char *name = s->m->name ? s->m->name : "model";
    cJSON_AddStringToObject(j, "sd_model_checkpoint", name);
    cJSON_AddStringToObject(j, "sld_default_safety", sld_serve_preset_name(s->o.default_safety));
    cJSON_AddStringToObject(j, "sld_min_safety", sld_serve_preset_name(s->o.min_safety));
    cJSON_AddBoolToObject(j, "sld_strict", s->o.strict);
    cJSON_AddBoolToObject(j, "sld_concept_fixed", s->o.safety_concept != NULL);
    cJSON_AddBoolToObject(j, "sld_safety_checker", s->o.safety_checker && s->m->safety);
    cJSON_AddNumberToObject(j, "sld_default_size", s->m->default_size);
    cJSON_AddNumberToObject(j, "sld_max_pixels", s->o.max_pixels);
    cJSON_AddNumberToObject(j, "sld_max_steps", s->o.max_steps);
    cJSON_AddNumberToObject(j, "sld_max_images", s->o.max_images);
    cJSON_AddNumberToObject(j, "sld_max_prompt", s->o.max_prompt);
    cJSON_AddNumberToObject(j, "sld_max_body", s->o.max_body);
    cJSON_AddNumberToObject(j, "sld_queue", s->o.queue);
    return send_json(s, c, 200, j, NULL);
}

static enum MHD_Result do_metrics(sld_server *s, struct MHD_Connection *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return send_error(s, c, 500, "out of memory", NULL);
    pthread_mutex_lock(&s->mu);
    fprintf(f, "# HELP sld_requests_total HTTP requests answered, by status code.\n"
               "# TYPE sld_requests_total counter\n");
    for (int k = 0; k <= N_CODES; k++) {
        if (k < N_CODES)
            fprintf(f, "sld_requests_total{code=\"%d\"} %lu\n", CODES[k], s->req_by_code[k]);
        else
            fprintf(f, "sld_requests_total{code=\"other\"} %lu\n", s->req_by_code[k]);
    }
    fprintf(f, "# HELP sld_queue_length Generation requests waiting.\n# TYPE sld_queue_length gauge\n"
               "sld_queue_length %d\n", s->n_queued);
    fprintf(f, "# HELP sld_busy 1 while a request is being generated.\n# TYPE sld_busy gauge\n"
               "sld_busy %d\n", s->running != NULL);
    fprintf(f, "# HELP sld_jobs_total Generation requests run.\n# TYPE sld_jobs_total counter\n"
               "sld_jobs_total %lu\n", s->jobs_total);
    fprintf(f, "# HELP sld_images_total Images generated.\n# TYPE sld_images_total counter\n"
               "sld_images_total %lu\n", s->images_total);
    fprintf(f, "# HELP sld_steps_total UNet evaluations run.\n# TYPE sld_steps_total counter\n"
               "sld_steps_total %lu\n", s->steps_total);
    fprintf(f, "# HELP sld_step_seconds_total Seconds spent in UNet steps.\n"
               "# TYPE sld_step_seconds_total counter\nsld_step_seconds_total %.6f\n",
            s->step_seconds);
    fprintf(f, "# HELP sld_seconds_per_step Mean seconds per UNet step so far.\n"
               "# TYPE sld_seconds_per_step gauge\nsld_seconds_per_step %.6f\n",
            s->steps_total ? s->step_seconds / (double)s->steps_total : 0.0);
    pthread_mutex_unlock(&s->mu);
    if (fclose(f) != 0) {
        free(buf);
        return send_error(s, c, 500, "out of memory", NULL);
    }
    return send_owned(s, c, 200, "text/plain; version=0.0.4", buf, len, NULL);
}

static enum MHD_Result do_page(sld_server *s, struct MHD_Connection *c)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        sld_serve_page_len(), (void *)sld_serve_page, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'none'; connect-src 'self'; img-src 'self' data:; "
                            "style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                            "frame-ancestors 'none'");
    count_code(s, 200);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static int authorized(sld_server *s, struct MHD_Connection *c)
{
    if (!s->o.api_key)
        return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7))
        return 0;
    const char *k = h + 7;
    return sld_serve_key_equal(k, strlen(k), s->o.api_key);
}

/* Per-connection upload buffer. */
typedef struct {
    char *buf;
    size_t len;
    int too_big;
} upload;

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    upload *u = *con_cls;
    if (u) {
        free(u->buf);
        free(u);
        *con_cls = NULL;
    }
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *data_size, void **con_cls)
{
    sld_server *s = cls;
    (void)version;
    int is_post = !strcmp(method, "POST"), is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    upload *u = *con_cls;
    if (!u) {
        if (!(u = calloc(1, sizeof *u)))
            return MHD_NO;
        *con_cls = u;
        if (is_post) {
            const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
            if (cl && strtoull(cl, NULL, 10) > (unsigned long long)s->o.max_body) {
                char msg[160];
                snprintf(msg, sizeof msg,
                         "the body is %.20s bytes, above the operator limit max_body = %d", cl,
                         s->o.max_body);
                return send_error(s, c, 413, msg, "max_body");
            }
            return MHD_YES;
        }
    }
    if (*data_size) {
        /* Keep at most max_body bytes; the rest is read and dropped (413 below). */
        if (!u->too_big && u->len + *data_size <= (size_t)s->o.max_body) {
            char *nb = realloc(u->buf, u->len + *data_size + 1);
            if (!nb)
                return MHD_NO;
            memcpy(nb + u->len, data, *data_size);
            u->buf = nb;
            u->len += *data_size;
            u->buf[u->len] = 0;
        } else {
            u->too_big = 1;
        }
        *data_size = 0;
        return MHD_YES;
    }

    if (!strcmp(method, "OPTIONS") && s->o.cors_origin) {
        struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, "Access-Control-Allow-Origin", s->o.cors_origin);
        MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
        MHD_add_response_header(r, "Access-Control-Max-Age", "600");
        MHD_add_response_header(r, "Vary", "Origin");
        count_code(s, 204);
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (!strcmp(url, "/health")) {
        if (!is_get)
            return send_error(s, c, 405, "use GET", NULL);
        return send_owned(s, c, 200, "application/json", strdup("{\"status\":\"ok\"}"), 15, NULL);
    }
    if (!strcmp(url, "/") || !strcmp(url, "/index.html")) {
        if (!is_get)
            return send_error(s, c, 405, "use GET", NULL);
        return do_page(s, c);
    }
    static const struct {
        const char *url;
        int post;
    } ROUTES[] = {{"/sdapi/v1/txt2img", 1},  {"/sdapi/v1/progress", 0},
                  {"/sdapi/v1/interrupt", 1}, {"/sdapi/v1/sd-models", 0},
                  {"/sdapi/v1/samplers", 0}, {"/sdapi/v1/options", 0},
                  {"/metrics", 0}};
    int route = -1;
    for (int k = 0; k < (int)(sizeof ROUTES / sizeof *ROUTES); k++)
        if (!strcmp(url, ROUTES[k].url))
            route = k;
    if (route < 0)
        return send_error(s, c, 404, "no such endpoint (see README: sld serve)", NULL);
    if (!authorized(s, c))
        return send_error(s, c, 401,
                          s->o.api_key ? "missing or wrong API key (Authorization: Bearer KEY)"
                                       : "unauthorized",
                          NULL);
    if (ROUTES[route].post ? !is_post : !is_get)
        return send_error(s, c, 405, ROUTES[route].post ? "use POST" : "use GET", NULL);
    switch (route) {
    case 0:
        if (u->too_big) {
            char msg[128];
            snprintf(msg, sizeof msg, "the body is above the operator limit max_body = %d bytes",
                     s->o.max_body);
            return send_error(s, c, 413, msg, "max_body");
        }
        return do_txt2img(s, c, u->buf ? u->buf : "", u->len);
    case 1: return do_progress(s, c);
    case 2: return do_interrupt(s, c);
    case 3: return do_models(s, c);
    case 4: return do_samplers(s, c);
    case 5: return do_options(s, c);
    default: return do_metrics(s, c);
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[256];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '\n')
        buf[--n] = 0;
    sld_log(SLD_LOG_DEBUG, "http: %s", buf);
}

/* ---- start and stop ---------------------------------------------------- */

/* Parses "HOST:PORT" / "[V6]:PORT" and opens a listening socket. */
static sld_status open_listener(const char *listen_at, int *fd_out, int *port_out, int *v6,
                                sld_error *err)
{
    char host[256];
    const char *port;
    if (listen_at[0] == '[') {
        const char *e = strchr(listen_at, ']');
        if (!e || e[1] != ':' || (size_t)(e - listen_at - 1) >= sizeof host)
            return sld_err(err, SLD_ERR_INVALID_ARG,
                           "listen address '%s' is not [IPV6]:PORT", listen_at);
        memcpy(host, listen_at + 1, (size_t)(e - listen_at - 1));
        host[e - listen_at - 1] = 0;
        port = e + 2;
    } else {
        const char *colon = strrchr(listen_at, ':');
        if (!colon || (size_t)(colon - listen_at) >= sizeof host || colon == listen_at)
            return sld_err(err, SLD_ERR_INVALID_ARG,
                           "listen address '%s' is not HOST:PORT (e.g. 127.0.0.1:7860)",
                           listen_at);
        memcpy(host, listen_at, (size_t)(colon - listen_at));
        host[colon - listen_at] = 0;
        port = colon + 1;
    }
    char *end;
    long pn = strtol(port, &end, 10);
    if (!*port || *end || pn < 0 || pn > 65535)
        return sld_err(err, SLD_ERR_INVALID_ARG, "listen address '%s': bad port '%s'", listen_at,
                       port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai || !ai)
        return sld_err(err, SLD_ERR_INVALID_ARG, "listen address '%s': %s", listen_at,
                       gai ? gai_strerror(gai) : "no address");
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        return sld_err(err, SLD_ERR_IO, "listen on %s: socket: %s", listen_at, strerror(errno));
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    *v6 = ai->ai_family == AF_INET6;
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64)) {
        int e = errno;
        close(fd);
        freeaddrinfo(ai);
        return sld_err(err, SLD_ERR_IO, "cannot listen on %s: %s%s", listen_at, strerror(e),
                       e == EADDRINUSE ? " (another server runs there; pick another port)" : "");
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl)) {
        int e = errno;
        close(fd);
        return sld_err(err, SLD_ERR_IO, "listen on %s: getsockname: %s", listen_at, strerror(e));
    }
    *port_out = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return SLD_OK;
}

static sld_status check_opts(const sld_server_opts *o, sld_error *err)
{
    if (o->queue < 0 || o->queue > 100000)
        return sld_err(err, SLD_ERR_INVALID_ARG, "queue must be in [0, 100000], got %d", o->queue);
    if (o->max_pixels < 64 || o->max_steps < 1 || o->max_images < 1 || o->max_prompt < 1 ||
        o->max_body < 64 || o->timeout_s < 1 || o->max_connections < 2)
        return sld_err(err, SLD_ERR_INVALID_ARG,
                       "server limits must be positive (max_pixels >= 64, max_body >= 64, "
                       "max_connections >= 2)");
    if ((unsigned)o->default_safety > SLD_SAFETY_MAX || (unsigned)o->min_safety > SLD_SAFETY_MAX)
        return sld_err(err, SLD_ERR_INVALID_ARG, "bad safety preset in the server options");
    if (o->api_key && (!*o->api_key || strlen(o->api_key) > 4096))
        return sld_err(err, SLD_ERR_INVALID_ARG, "the API key must be 1..4096 characters");
    if (o->api_key)
        for (const char *p = o->api_key; *p; p++)
            if ((unsigned char)*p <= ' ' || *p == 0x7f)
                return sld_err(err, SLD_ERR_INVALID_ARG,
                               "the API key must not contain spaces or control characters");
    return SLD_OK;
}

static char *dup_or_null(const char *s, int *oom)
{
    if (!s)
        return NULL;
    char *d = sld_strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

sld_status sld_server_start(sld_server **out, sld_model *m, const sld_server_opts *o,
                            sld_error *err)
{
    *out = NULL;
    sld_server_opts def;
    if (!o) {
        sld_server_opts_default(&def);
        o = &def;
    }
    sld_status st = check_opts(o, err);
    if (st)
        return st;
    sld_server *s = sld_calloc(1, sizeof *s);
    if (!s)
        return sld_err(err, SLD_ERR_NOMEM, "out of memory for the server");
    s->m = m;
    s->o = *o;
    int oom = 0;
    s->s_listen = dup_or_null(o->listen ? o->listen : "127.0.0.1:7860", &oom);
    s->s_key = dup_or_null(o->api_key, &oom);
    s->s_cors = dup_or_null(o->cors_origin, &oom);
    s->s_concept = dup_or_null(o->safety_concept, &oom);
    s->o.listen = s->s_listen;
    s->o.api_key = s->s_key;
    s->o.cors_origin = s->s_cors;
    s->o.safety_concept = s->s_concept;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv_work, NULL);
    pthread_cond_init(&s->cv_done, NULL);
    atomic_init(&s->interrupt, 0);
    if (oom) {
        sld_server_stop(s);
        return sld_err(err, SLD_ERR_NOMEM, "out of memory for the server");
    }
    if ((st = sld_ctx_new(&s->ctx, m, o->n_threads, err))) {
        sld_server_stop(s);
        return st;
    }
    int fd = -1, v6 = 0;
    if ((st = open_listener(s->o.listen, &fd, &s->port, &v6, err))) {
        sld_server_stop(s);
        return st;
    }
    if (pthread_create(&s->worker, NULL, worker_main, s)) {
        close(fd);
        sld_server_stop(s);
        return sld_err(err, SLD_ERR_NOMEM, "cannot start the server's worker thread");
    }
    s->worker_started = 1;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_EXTERNAL_LOGGER,
                            on_mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections,
                            MHD_OPTION_NOTIFY_COMPLETED, on_done, s, MHD_OPTION_END);
    if (!s->d) {
        close(fd);
        sld_server_stop(s);
        return sld_err(err, SLD_ERR_IO, "cannot start the HTTP server on %s", o->listen);
    }
    sld_log(SLD_LOG_INFO, "serving %s on %s (port %d)", m->name ? m->name : "model", s->o.listen,
            s->port);
    *out = s;
    return SLD_OK;
}

int sld_server_port(const sld_server *s) { return s ? s->port : 0; }

void sld_server_stop(sld_server *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    atomic_store(&s->interrupt, 1);
    for (job *jb = s->head; jb;) {
        job *next = jb->next;
        jb->http = 503;
        jb->body = error_text("Service Unavailable", "the server is shutting down");
        jb->done = 1;
        jb = next;
    }
    s->head = s->tail = NULL;
    s->n_queued = 0;
    pthread_cond_broadcast(&s->cv_work);
    pthread_cond_broadcast(&s->cv_done);
    pthread_mutex_unlock(&s->mu);
    /* Connection threads waiting on a job return once the worker finishes
     * the (interrupted) running one; MHD joins them here. */
    if (s->d)
        MHD_stop_daemon(s->d);
    if (s->worker_started)
        pthread_join(s->worker, NULL);
    sld_ctx_free(s->ctx);
    pthread_cond_destroy(&s->cv_done);
    pthread_cond_destroy(&s->cv_work);
    pthread_mutex_destroy(&s->mu);
    sld_free(s->s_listen);
    sld_free(s->s_key);
    sld_free(s->s_cors);
    sld_free(s->s_concept);
    sld_free(s);
}
