/* fuzz_serve_request.c — libFuzzer target for the `sld serve` request
 * handler's parser (JSON body -> generation parameters, under a strict and a
 * lenient policy): no crash, no leak, no read past the body, and every
 * accepted request satisfies the limits it was parsed under. */
#include "serve/serve.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *body, size_t size, const sld_server_opts *o)
{
    sld_serve_request q;
    char msg[256], limit[32];
    int rc = sld_serve_parse_txt2img(body, size, o, 64, 123, &q, msg, sizeof msg, limit,
                                     sizeof limit);
    if (rc == 0) {
        const sld_gen_params *p = &q.p;
        long long pixels = (long long)(p->width ? p->width : 64) * (p->height ? p->height : 64);
        if (p->steps < 1 || p->steps > o->max_steps || pixels > o->max_pixels ||
            p->n_images * q.n_iter > o->max_images || !p->prompt ||
            strlen(p->prompt) > (size_t)o->max_prompt || q.preset < o->min_safety ||
            (o->min_safety > SLD_SAFETY_OFF && p->cfg <= 1))
            abort();
        sld_serve_request_free(&q);
    } else if ((rc != 400 && rc != 413 && rc != 500) || !msg[0]) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy so ASan catches any read past the end. */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    sld_server_opts o;
    sld_server_opts_default(&o);
    o.max_steps = 20;
    o.max_images = 4;
    o.max_prompt = 300;
    check(buf, size, &o);
    o.min_safety = SLD_SAFETY_STRONG;
    o.safety_concept = "violence";
    check(buf, size, &o);
    o.strict = 1;
    check(buf, size, &o);
    free(buf);
    return 0;
}
