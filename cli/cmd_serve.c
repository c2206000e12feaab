/* cmd_serve.c — `sld serve`: loads the model once and runs the
 * A1111-compatible HTTP service (sld_server_* in sld.h) until SIGINT or
 * SIGTERM. Prints "sld serve: listening on http://HOST:PORT/" on stderr once
 * it accepts connections (scripts read the port from that line). */
#include "cli.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *SERVE_USAGE =
    "usage: sld serve --model PATH [options]\n"
    "  --model PATH             diffusers folder or single-file checkpoint (as sld generate)\n"
    "  --config DIR             diffusers folder to take configs from (single files)\n"
    "  --precision fp32|bf16|auto   --prediction epsilon|v   --threads N (all cores)\n"
    "  --conv-algo auto|direct  fp32 3x3 convs: Winograd where it pays, or direct only\n"
    "  --no-safety-checker      do not load/run the model's safety checker\n"
    "  --listen HOST:PORT       address to listen on (127.0.0.1:7860; port 0 = any free)\n"
    "  --api-key KEY            require 'Authorization: Bearer KEY' (all but /health and /)\n"
    "  --api-key-file FILE      the same, key read from the file's first line\n"
    "  --cors ORIGIN            allow this browser origin (CORS off by default)\n"
    "  --queue N                requests waiting behind the running one (4); more: 503\n"
    "  --default-safety P       preset for requests without 'safety' (medium)\n"
    "  --min-safety P           raise requests below P to P (off)\n"
    "  --strict                 refuse (400) requests below --min-safety instead of raising\n"
    "  --safety-concept TEXT    fix the safety concept for every request\n"
    "  --max-pixels N           width x height (1048576)   --max-steps N (150)\n"
    "  --max-images N           batch_size x n_iter (8)     --max-prompt BYTES (4096)\n"
    "  --max-body BYTES         request body (65536)        --timeout S idle clients (30)\n"
    "  --max-connections N      simultaneous connections (64)\n"
    "presets P: off, weak, medium, strong, max. Endpoints and fields: README.md (sld serve).\n";

static int parse_preset(const char *flag, const char *v, sld_safety_preset *out)
{
    static const char *const P[] = {"off", "weak", "medium", "strong", "max"};
    for (int k = 0; k < 5; k++)
        if (!strcmp(v, P[k])) {
            *out = (sld_safety_preset)k;
            return 0;
        }
    return cli_usage_error("serve", "%s wants off, weak, medium, strong or max, not '%s'", flag,
                           v);
}

static int parse_int_arg(const char *flag, const char *v, long long lo, long long hi, int *out)
{
    long long x;
    if (cli_parse_int(v, lo, hi, &x))
        return cli_usage_error("serve", "%s wants an integer in [%lld, %lld], not '%s'", flag, lo,
                               hi, v);
    *out = (int)x;
    return 0;
}

/* The key file's first line, without the newline. */
static char *read_key_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "sld serve: cannot read the API key file %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char buf[4200];
    char *line = fgets(buf, sizeof buf, f);
    fclose(f);
    if (!line) {
        fprintf(stderr, "sld serve: the API key file %s is empty\n", path);
        return NULL;
    }
    buf[strcspn(buf, "\r\n")] = 0;
    if (!buf[0]) {
        fprintf(stderr, "sld serve: the API key file %s has an empty first line\n", path);
        return NULL;
    }
    return strdup(buf);
}

int cmd_serve(int argc, char **argv)
{
    sld_model_opts mo;
    sld_model_opts_default(&mo);
    sld_server_opts so;
    sld_server_opts_default(&so);
    const char *model = NULL, *key_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(SERVE_USAGE, stdout);
            return 0;
        }
        if (!strcmp(a, "--no-safety-checker")) {
            mo.no_safety_checker = 1;
            so.safety_checker = 0;
            continue;
        }
        if (!strcmp(a, "--strict")) {
            so.strict = 1;
            continue;
        }
        if (a[0] != '-')
            return cli_usage_error("serve", "unexpected argument '%s'", a);
        if (i + 1 >= argc)
            return cli_usage_error("serve", "'%s' needs a value or is unknown", a);
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--config"))
            mo.config_dir = v;
        else if (!strcmp(a, "--conv-algo")) {
            if (!strcmp(v, "auto"))
                mo.conv_algo = SLD_CONV_AUTO;
            else if (!strcmp(v, "direct"))
                mo.conv_algo = SLD_CONV_DIRECT;
            else
                return cli_usage_error("serve", "--conv-algo wants auto or direct, not '%s'", v);
        } else if (!strcmp(a, "--precision")) {
            if (!strcmp(v, "fp32"))
                mo.precision = SLD_PREC_FP32;
            else if (!strcmp(v, "bf16"))
                mo.precision = SLD_PREC_BF16;
            else if (!strcmp(v, "auto"))
                mo.precision = SLD_PREC_AUTO;
            else
                return cli_usage_error("serve", "--precision wants fp32, bf16 or auto, not '%s'",
                                       v);
        } else if (!strcmp(a, "--prediction")) {
            if (!strcmp(v, "epsilon"))
                mo.prediction = SLD_PRED_EPSILON;
            else if (!strcmp(v, "v") || !strcmp(v, "v_prediction"))
                mo.prediction = SLD_PRED_V;
            else
                return cli_usage_error("serve", "--prediction wants epsilon or v, not '%s'", v);
        } else if (!strcmp(a, "--threads"))
            rc = parse_int_arg(a, v, 0, 4096, &so.n_threads);
        else if (!strcmp(a, "--listen"))
            so.listen = v;
        else if (!strcmp(a, "--api-key"))
            so.api_key = v;
        else if (!strcmp(a, "--api-key-file"))
            key_file = v;
        else if (!strcmp(a, "--cors"))
            so.cors_origin = v;
        else if (!strcmp(a, "--queue"))
            rc = parse_int_arg(a, v, 0, 100000, &so.queue);
        else if (!strcmp(a, "--default-safety"))
            rc = parse_preset(a, v, &so.default_safety);
        else if (!strcmp(a, "--min-safety"))
            rc = parse_preset(a, v, &so.min_safety);
        else if (!strcmp(a, "--safety-concept"))
            so.safety_concept = v;
        else if (!strcmp(a, "--max-pixels"))
            rc = parse_int_arg(a, v, 64, 1 << 28, &so.max_pixels);
        else if (!strcmp(a, "--max-steps"))
            rc = parse_int_arg(a, v, 1, 1000, &so.max_steps);
        else if (!strcmp(a, "--max-images"))
            rc = parse_int_arg(a, v, 1, 64, &so.max_images);
        else if (!strcmp(a, "--max-prompt"))
            rc = parse_int_arg(a, v, 1, 1 << 20, &so.max_prompt);
        else if (!strcmp(a, "--max-body"))
            rc = parse_int_arg(a, v, 64, 1 << 26, &so.max_body);
        else if (!strcmp(a, "--timeout"))
            rc = parse_int_arg(a, v, 1, 86400, &so.timeout_s);
        else if (!strcmp(a, "--max-connections"))
            rc = parse_int_arg(a, v, 2, 100000, &so.max_connections);
        else
            return cli_usage_error("serve", "unknown option '%s'", a);
        if (rc)
            return rc;
    }
    if (!model)
        return cli_usage_error("serve", "--model is required");
    if (so.api_key && key_file)
        return cli_usage_error("serve", "give --api-key or --api-key-file, not both");
    char *key = NULL;
    if (key_file) {
        if (!(key = read_key_file(key_file)))
            return 1;
        so.api_key = key;
    }

    sld_error err;
    sld_model *m = NULL;
    sld_server *srv = NULL;
    int rc = 1;
    /* SIGINT/SIGTERM are blocked in every thread (the server's threads
     * inherit the mask) and taken here with sigwait: a clean shutdown. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (sld_model_open(&m, model, &mo, &err) || sld_server_start(&srv, m, &so, &err)) {
        cli_fail(&err);
        goto done;
    }
    const char *colon = strrchr(so.listen, ':');
    fprintf(stderr, "sld serve: listening on http://%.*s:%d/%s\n",
            colon ? (int)(colon - so.listen) : 0, so.listen, sld_server_port(srv),
            so.api_key ? " (API key required)" : "");
    fflush(stderr);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "sld serve: stopping\n");
    rc = 0;
done:
    sld_server_stop(srv);
    sld_model_close(m);
    free(key);
    return rc;
}
