/*
 * bench_serve.c — `sld serve` throughput and per-request overhead.
 *
 * Quick (always), the tiny model tests/fixtures/models/tiny-sd1, 64x64,
 * 2 steps, SLD medium, no safety checker:
 *   serve_tiny64_direct      median seconds of sld_generate + PNG encode (into
 *                            memory) in this process: what `sld generate` does
 *                            after loading, minus the file write; the floor
 *   serve_tiny64_seq         median latency of one client, requests in a row
 *   serve_tiny64_c8_median   median latency with 8 concurrent clients
 *   serve_tiny64_c8_p95      95th percentile latency, 8 clients
 *   serve_tiny64_c8_per_req  wall seconds / requests (1 / requests per second)
 * SLD_BENCH_FULL=1 adds, on the random SD 1.5 model ($SLD_BENCH_MODEL):
 *   serve_sd15_512_direct    sld_generate + PNG at 512x512, 1 DDIM step (SLD medium)
 *   serve_sd15_512_http      the same request over HTTP (JSON, base64)
 *   serve_sd15_512_http_generate  the sld_generate part of it (info.generate_seconds)
 *   serve_sd15_512_overhead  per request: HTTP latency minus its own sld_generate
 *                            time (parse, queue, PNG, base64, JSON, transfer);
 *                            measured within one request, so a load change
 *                            between the direct and the HTTP runs cancels out
 * serve_tiny64_seq_overhead is the same for the tiny requests.
 *
 * The client is a plain socket writer (HTTP/1.1, Connection: close) so the
 * bench needs nothing beyond libsld. Timings on a shared machine are noisy:
 * compare medians and repeat before believing a small difference.
 * Env: SLD_BENCH_FULL, SLD_BENCH_MODEL, SLD_BENCH_PRECISION, SLD_BENCH_REPS,
 * SLD_BENCH_SERVE_ONLY=tiny|sd15.
 */
#include "common.h"
#include "io/png.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

/* POSTs body to 127.0.0.1:port/sdapi/v1/txt2img; returns the HTTP status (0:
 * transport failure) and the server's in-sld_generate seconds of the
 * request (info.generate_seconds, escaped inside the "info" string) in *gen. */
static int post(int port, const char *body, double *gen)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return 0;
    }
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      "application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                      strlen(body));
    if (write(fd, head, (size_t)hl) != hl ||
        write(fd, body, strlen(body)) != (ssize_t)strlen(body)) {
        close(fd);
        return 0;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    ssize_t n;
    while (buf && (n = read(fd, buf + len, cap - len)) > 0) {
        len += (size_t)n;
        if (len == cap) {
            char *nb = realloc(buf, 2 * cap + 1);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
    }
    close(fd);
    int status = 0;
    *gen = NAN;
    if (buf) {
        buf[len] = 0;
        if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
            status = 0;
        const char *g = strstr(buf, "generate_seconds\\\":");
        if (g)
            *gen = atof(g + strlen("generate_seconds\\\":"));
    }
    free(buf);
    return status;
}

typedef struct {
    int port, id, n;
    double *lat, *over; /* latency; latency minus the server's sld_generate time */
    int failed;
} client;

static void *client_main(void *arg)
{
    client *c = arg;
    for (int i = 0; i < c->n; i++) {
        char body[200];
        snprintf(body, sizeof body,
                 "{\"prompt\":\"bench %d\",\"steps\":2,\"width\":64,\"height\":64,\"seed\":%d,"
                 "\"safety\":\"medium\"}",
                 c->id, i);
        double gen = NAN, t0 = sld_time_now();
        if (post(c->port, body, &gen) != 200)
            c->failed++;
        c->lat[i] = sld_time_now() - t0;
        if (c->over)
            c->over[i] = c->lat[i] - gen;
    }
    return NULL;
}

/* Direct generation + PNG of one request, like `sld generate` after loading. */
static double direct(sld_ctx *c, const sld_model *m, int size, int steps, sld_sampler sampler,
                     double *check)
{
    sld_gen_params p;
    sld_gen_params_default(&p);
    p.prompt = "bench";
    p.steps = steps;
    p.width = p.height = size;
    p.seed = 1;
    p.sampler = sampler;
    p.safety_checker = 0;
    sld_gen_result r = {0};
    sld_error err;
    double t0 = sld_time_now();
    if (sld_generate(c, &p, &r, &err)) {
        fprintf(stderr, "bench_serve: %s\n", err.msg);
        return -1;
    }
    /* the PNG as sld generate encodes it, into memory: the figure is compute,
     * not the disk (its fsync alone took seconds on the shared machine) */
    char *text = sld_gen_params_text(&p, m, p.seed);
    char *png = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&png, &len);
    sld_png_text chunk = {"parameters", text};
    if (f)
        sld_png_write_stream(f, "bench", r.pixels, r.width, r.height, &chunk, 1, &err);
    if (f)
        fclose(f);
    double t = sld_time_now() - t0;
    free(png);
    int fin;
    *check = bench_checksum(r.image_float, (size_t)r.n * r.width * r.height * 3, &fin);
    free(text);
    sld_gen_result_free(&r);
    return t;
}

/* The direct runs happen on a thread of their own, like the server's worker:
 * on this machine under heavy load, sld_generate on the process's initial
 * thread was 50-100x slower than on any other thread (libgomp barrier
 * behaviour, cause not pinned down), which would flatter the server. */
typedef struct {
    sld_ctx *c;
    const sld_model *m;
    int size, steps, reps;
    sld_sampler sampler;
    double *t, check;
} direct_job;

static void *direct_main(void *arg)
{
    direct_job *d = arg;
    for (int i = 0; i < d->reps; i++)
        d->t[i] = direct(d->c, d->m, d->size, d->steps, d->sampler, &d->check);
    return NULL;
}

static double direct_median(direct_job *d)
{
    pthread_t t;
    if (pthread_create(&t, NULL, direct_main, d))
        direct_main(d);
    else
        pthread_join(t, NULL);
    return bench_median(d->t, d->reps);
}

static double percentile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    int k = (int)ceil(q * n) - 1;
    return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

static int bench_tiny(int threads)
{
    sld_model_opts mo;
    sld_model_opts_default(&mo);
    mo.no_safety_checker = 1;
    mo.precision = SLD_PREC_FP32;
    sld_model *m = NULL;
    sld_ctx *c = NULL;
    sld_server *s = NULL;
    sld_error err;
    if (sld_model_open(&m, "tests/fixtures/models/tiny-sd1", &mo, &err) ||
        sld_ctx_new(&c, m, threads, &err)) {
        fprintf(stderr, "bench_serve: %s (run from the repository root)\n", err.msg);
        sld_model_close(m);
        return 1;
    }
    double t[BENCH_MAX_REPS];
    int reps = 21;
    direct_job dj = {c, m, 64, 2, reps, SLD_SAMPLER_DEFAULT, t, 0};
    double med = direct_median(&dj);
    bench_csv_line(threads, "fp32", "serve_tiny64_direct", med, 0, dj.check, -1);
    sld_ctx_free(c);

    sld_server_opts so;
    sld_server_opts_default(&so);
    so.listen = "127.0.0.1:0";
    so.queue = 16;
    so.safety_checker = 0;
    so.n_threads = threads;
    if (sld_server_start(&s, m, &so, &err)) {
        fprintf(stderr, "bench_serve: %s\n", err.msg);
        sld_model_close(m);
        return 1;
    }
    int port = sld_server_port(s);
    double lat[200], over[200];
    client one = {port, 0, reps, lat, over, 0};
    client_main(&one);
    bench_csv_line(threads, "fp32", "serve_tiny64_seq", bench_median(lat, reps), 0, 0, -1);
    bench_csv_line(threads, "fp32", "serve_tiny64_seq_overhead", bench_median(over, reps), 0, 0,
                   -1);

    enum { N_CLIENTS = 8, PER = 25 };
    client cl[N_CLIENTS];
    pthread_t th[N_CLIENTS];
    double all[N_CLIENTS * PER];
    double t0 = sld_time_now();
    for (int i = 0; i < N_CLIENTS; i++) {
        cl[i] = (client){port, i, PER, all + i * PER, NULL, 0};
        pthread_create(&th[i], NULL, client_main, &cl[i]);
    }
    int failed = 0;
    for (int i = 0; i < N_CLIENTS; i++) {
        pthread_join(th[i], NULL);
        failed += cl[i].failed;
    }
    double wall = sld_time_now() - t0;
    int n = N_CLIENTS * PER;
    bench_csv_line(threads, "fp32", "serve_tiny64_c8_median", percentile(all, n, 0.5), 0, 0, -1);
    bench_csv_line(threads, "fp32", "serve_tiny64_c8_p95", percentile(all, n, 0.95), 0, 0, -1);
    bench_csv_line(threads, "fp32", "serve_tiny64_c8_per_req", wall / n, 0, 0, -1);
    fprintf(stderr, "bench_serve: tiny 64x64: %d requests from %d clients in %.2f s = %.1f req/s, "
                    "%d failed\n", n, N_CLIENTS, wall, n / wall, failed);
    sld_server_stop(s);
    sld_model_close(m);
    return failed ? 1 : 0;
}

static int bench_sd15(int threads)
{
    const char *dir = getenv("SLD_BENCH_MODEL");
    const char *pe = getenv("SLD_BENCH_PRECISION");
    sld_model_opts mo;
    sld_model_opts_default(&mo);
    mo.no_safety_checker = 1;
    mo.precision = pe && !strcmp(pe, "bf16") ? SLD_PREC_BF16 : pe && !strcmp(pe, "auto")
                                                                   ? SLD_PREC_AUTO
                                                                   : SLD_PREC_FP32;
    const char *prec = mo.precision == SLD_PREC_BF16 ? "bf16" : mo.precision == SLD_PREC_AUTO
                                                                    ? "auto"
                                                                    : "fp32";
    sld_model *m = NULL;
    sld_ctx *c = NULL;
    sld_server *s = NULL;
    sld_error err;
    if (sld_model_open(&m, dir ? dir : "/tmp/sld-bench-sd15", &mo, &err) ||
        sld_ctx_new(&c, m, threads, &err)) {
        fprintf(stderr, "bench_serve: %s\n", err.msg);
        sld_model_close(m);
        return 1;
    }
    int reps = bench_reps(2);
    double td[BENCH_MAX_REPS], th[BENCH_MAX_REPS], tg[BENCH_MAX_REPS], to[BENCH_MAX_REPS];
    direct_job dj = {c, m, 512, 1, reps, SLD_SAMPLER_DDIM, td, 0};
    double md = direct_median(&dj);
    sld_ctx_free(c);
    sld_server_opts so;
    sld_server_opts_default(&so);
    so.listen = "127.0.0.1:0";
    so.safety_checker = 0;
    so.n_threads = threads;
    if (sld_server_start(&s, m, &so, &err)) {
        fprintf(stderr, "bench_serve: %s\n", err.msg);
        sld_model_close(m);
        return 1;
    }
    int bad = 0;
    for (int i = 0; i < reps; i++) {
        double t0 = sld_time_now();
        bad += post(sld_server_port(s),
                    "{\"prompt\":\"bench\",\"steps\":1,\"width\":512,\"height\":512,\"seed\":1,"
                    "\"safety\":\"medium\",\"sampler_name\":\"DDIM\"}",
                    &tg[i]) != 200;
        th[i] = sld_time_now() - t0;
        to[i] = th[i] - tg[i];
    }
    sld_server_stop(s);
    sld_model_close(m);
    bench_csv_line(threads, prec, "serve_sd15_512_direct", md, 0, dj.check, -1);
    bench_csv_line(threads, prec, "serve_sd15_512_http", bench_median(th, reps), 0, 0, -1);
    bench_csv_line(threads, prec, "serve_sd15_512_http_generate", bench_median(tg, reps), 0, 0, -1);
    bench_csv_line(threads, prec, "serve_sd15_512_overhead", bench_median(to, reps), 0, 0, -1);
    return bad ? 1 : 0;
}

int main(void)
{
    sld_log_set(NULL, NULL);
    int threads = sld_threads_get();
    bench_csv_header();
    const char *only = getenv("SLD_BENCH_SERVE_ONLY"); /* "tiny" or "sd15" */
    int rc = only && !strcmp(only, "sd15") ? 0 : bench_tiny(threads);
    const char *full = getenv("SLD_BENCH_FULL");
    if ((full && atoi(full)) || (only && !strcmp(only, "sd15")))
        rc |= bench_sd15(threads);
    return rc;
}
