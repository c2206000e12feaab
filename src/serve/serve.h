/*
 * serve.h — the HTTP service's library part (internal): an A1111
 * `/sdapi/v1/txt2img` JSON body turned into generation parameters under the
 * operator's policy (request.c), base64, and the page compiled into the
 * binary (page.c). server.c (libmicrohttpd, the queue, the worker) builds on
 * these; the public face is sld_server_* in sld.h.
 *
 * Invariants: nothing a request says ever names a file; every field has a
 * type check and a range; a refused request gets an HTTP status (400 or 413)
 * and a message naming the field or the limit, and never aborts the process.
 */
#ifndef SLD_SERVE_H
#define SLD_SERVE_H

#include "sld.h"

#include <stddef.h>
#include <stdint.h>

#define SLD_SERVE_MAX_NOTES 8
#define SLD_SERVE_MAX_IGNORED 16

/* One parsed txt2img request. Strings are owned (free with
 * sld_serve_request_free); p's string pointers point into them. */
typedef struct {
    sld_gen_params p;               /* seed: the first iteration's seed */
    int n_iter;                     /* batches; iteration k uses seed + k * batch_size */
    int seed_random;                /* the request asked for seed -1 */
    int send_images;                /* A1111 "send_images" (default true) */
    int sld_map;                    /* "sld_map": also send each image's SLD map */
    sld_safety_preset preset;       /* the preset in effect (after policy) */
    sld_safety_preset preset_asked; /* what the request asked for */
    int sld_custom;                 /* a hyperparameter override was applied */
    char *prompt, *negative_prompt, *safety_concept;
    char *notes[SLD_SERVE_MAX_NOTES]; /* policy decisions, for "info" */
    int n_notes;
    char *ignored[SLD_SERVE_MAX_IGNORED]; /* unknown or unsupported fields */
    int n_ignored;
} sld_serve_request;

/* Parses a txt2img body (len bytes, need not be NUL-terminated) under the
 * policy in o (limits, min safety, fixed concept, strict). default_size is
 * the model's native size (width/height absent or 0). random_seed is used
 * when the request says seed -1 (the caller draws it).
 * Returns 0 and fills *out (free with sld_serve_request_free), or the HTTP
 * status to answer (400, or 413 for a limit on size) with msg (one line
 * naming the field or limit) and limit (the limit's name, or "" when the
 * problem is not a limit). *out is left empty on error. */
int sld_serve_parse_txt2img(const char *body, size_t len, const sld_server_opts *o,
                            int default_size, uint64_t random_seed, sld_serve_request *out,
                            char *msg, size_t msg_len, char *limit, size_t limit_len);
void sld_serve_request_free(sld_serve_request *r);

/* A sampler by A1111 name ("Euler a", "DPM++ 2M Karras", "PLMS", ...) or sld
 * name ("euler_a", "dpmpp_2m", ...), case-insensitive. Returns 0 and sets *s
 * (and *karras for the Karras variants), or -1 when unknown. */
int sld_serve_sampler_lookup(const char *name, sld_sampler *s, int *karras);
/* The A1111 name of a sampler (SLD_SAMPLER_DEFAULT: "Default"). */
const char *sld_serve_sampler_name(sld_sampler s, int karras);
const char *sld_serve_preset_name(sld_safety_preset p);

/* Base64 (RFC 4648, padded) of n bytes: a new NUL-terminated string
 * (free()), or NULL when out of memory. */
char *sld_serve_base64(const uint8_t *data, size_t n);

/* Constant-time comparison of a presented key with the expected one: the
 * time depends only on the expected key's length. 1 when equal. */
int sld_serve_key_equal(const char *given, size_t given_len, const char *expected);

/* The web page (src/serve/page.html, compiled in). */
extern const char sld_serve_page[];
size_t sld_serve_page_len(void);

#endif /* SLD_SERVE_H */
