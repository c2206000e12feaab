/* bench_net.c — one UNet evaluation at SD 1.5 shape (64x64 latents, batch 1
 * and 3) and one VAE decode at 512x512, on a full-size random model written
 * by sld_make_random (cached in $SLD_BENCH_DIR or /tmp/sld-bench-sd15).
 *
 * Usage: bench_net [--threads N] [--reps R] [--precision fp32|bf16|auto]
 *                  [--conv-algo auto|direct] [--profile]
 *                  [--batch 1|3] [--skip-unet] [--skip-vae]
 * Validation: outputs must be finite, else exit 1 (the numerics are checked by
 * tests/test_unet, test_vae, test_ops and test_precision against diffusers
 * and the _ref kernels; a full-size _ref UNet would take hours). One CSV line
 * per case in bench/common.h's format: median seconds of R, GFLOP/s (UNet SD
 * 1.5 64x64: 803 GFLOP per batch item; VAE decode 512x512: 2515 GFLOP, convs
 * + attention, 2 FLOP per MAC), % of the nominal peak, peak RSS, checksum.
 * stderr gets each rep's time and the load time. --profile (or SLD_PROFILE=1)
 * times every op of each forward (ops/profile.h) and adds one CSV line per
 * op class, case NAME/CLASS (e.g. unet_sd15_64x64_b3/conv3x3): mean seconds
 * per forward (the first of several reps left out: it builds the oneDNN
 * primitives), and where the work is counted GFLOP/s and % of peak; stderr
 * gets the same as a table with each class's share. The clock reads and
 * waits add a little, so take the whole-forward figures from a run without
 * it. With --conv-algo direct the precision column reads fp32-direct. */
#include "common.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/unet.h"
#include "model/vae.h"
#include "model/weights.h"
#include "ops/packed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static void log_stderr(sld_log_level level, const char *msg, void *user)
{
    (void)level;
    (void)user;
    fprintf(stderr, "%s\n", msg);
}

/* Current anonymous and file-backed resident MiB (Linux /proc), to tell the
 * weights we hold from mmap'd checkpoint pages the kernel may drop. */
static void rss_split(double *anon, double *file)
{
    *anon = *file = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "RssAnon:", 8))
            *anon = atof(line + 8) / 1024.0;
        else if (!strncmp(line, "RssFile:", 8))
            *file = atof(line + 8) / 1024.0;
    }
    fclose(f);
}

/* Sums one forward's profile into acc. */
static void prof_acc(sld_prof *acc, const sld_prof *p)
{
    if (!p)
        return;
    for (int i = 0; i < SLD_PROF_N; i++) {
        acc->seconds[i] += p->seconds[i];
        acc->gflop[i] += p->gflop[i];
    }
    acc->total += p->total;
    acc->forwards += p->forwards;
}

/* One CSV line per op class that ran (per-forward means) and a table on
 * stderr; "other" is what no class covers (arena, glue, the tap checks). */
static void prof_print(const sld_prof *acc, int threads, const char *pname, const char *cname)
{
    if (acc->forwards < 1 || acc->total <= 0.0)
        return;
    const double n = acc->forwards;
    double rest = acc->total;
    fprintf(stderr, "%s profile, mean of %d forward(s): total %.3f s\n", cname, acc->forwards,
            acc->total / n);
    char name[96];
    for (int i = 0; i < SLD_PROF_N; i++) {
        rest -= acc->seconds[i];
        if (acc->seconds[i] <= 0.0)
            continue;
        double sec = acc->seconds[i] / n, gf = acc->gflop[i] / n;
        fprintf(stderr, "  %-13s %8.3f s %5.1f %%", sld_prof_names[i], sec,
                100.0 * acc->seconds[i] / acc->total);
        if (gf > 0.0)
            fprintf(stderr, "  %7.1f GFLOP  %6.1f GFLOP/s", gf, gf / sec);
        fputc('\n', stderr);
        snprintf(name, sizeof name, "%s/%s", cname, sld_prof_names[i]);
        bench_csv_line(threads, pname, name, sec, gf, 0.0, -1.0);
    }
    fprintf(stderr, "  %-13s %8.3f s %5.1f %%\n", "other", rest / n, 100.0 * rest / acc->total);
    snprintf(name, sizeof name, "%s/other", cname);
    bench_csv_line(threads, pname, name, rest / n, 0.0, 0.0, -1.0);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double checksum(const float *x, size_t n, int *finite)
{
    double s = 0;
    *finite = 1;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            *finite = 0;
        s += x[i] * (double)((i % 7) + 1);
    }
    return s;
}

static int open_part(const char *dir, const char *sub, sld_st_file **f, sld_weights **w,
                     sld_json *j)
{
    char p[4096];
    sld_error err;
    snprintf(p, sizeof p, "%s/%s/diffusion_pytorch_model.safetensors", dir, sub);
    if (sld_st_open(f, p, &err) || sld_weights_new(w, sub, &err) ||
        sld_weights_add_file(*w, *f, NULL, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 0;
    }
    snprintf(p, sizeof p, "%s/%s/config.json", dir, sub);
    if (sld_json_load(j, p, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 1, skip_vae = 0, only_batch = 0, skip_unet = 0, conv_algo = 0;
    sld_precision prec = SLD_PREC_FP32;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--skip-vae"))
            skip_vae = 1;
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
            const char *pv = argv[++i];
            prec = !strcmp(pv, "bf16") ? SLD_PREC_BF16 : !strcmp(pv, "auto") ? SLD_PREC_AUTO
                                                                           : SLD_PREC_FP32;
        } else if (!strcmp(argv[i], "--conv-algo") && i + 1 < argc) {
            conv_algo = !strcmp(argv[++i], "direct");
        } else if (!strcmp(argv[i], "--profile")) {
            setenv("SLD_PROFILE", "1", 1); /* read when the networks load */
        } else if (!strcmp(argv[i], "--skip-unet"))
            skip_unet = 1;
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            only_batch = atoi(argv[++i]);
    }
    if (reps < 1 || reps > 64)
        reps = 1;
    sld_threads_set(threads);
    sld_log_set(log_stderr, NULL);
    const char *dir = getenv("SLD_BENCH_DIR");
    if (!dir || !*dir)
        dir = "/tmp/sld-bench-sd15";
    sld_error err;
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/vae/diffusion_pytorch_model.safetensors", dir);
    if (!sld_path_exists(probe)) {
        double t0 = sld_time_now();
        if (sld_make_random("sd15", dir, 1, &err)) {
            fprintf(stderr, "make-random: %s\n", err.msg);
            return 1;
        }
        fprintf(stderr, "wrote random SD 1.5 to %s in %.1f s\n", dir, sld_time_now() - t0);
    }
    const char *pname = sld_pack_precision(prec) == SLD_PREC_BF16 ? "bf16"
                        : conv_algo                                ? "fp32-direct"
                                                                   : "fp32";
    bench_csv_header();

    /* ---- UNet ---- */
    sld_st_file *f;
    sld_weights *w;
    sld_json j;
    sld_unet_config uc;
    sld_unet *u = NULL;
    if (skip_unet)
        goto vae;
    if (!open_part(dir, "unet", &f, &w, &j))
        return 1;
    double tl = sld_time_now();
    if (sld_unet_config_from_json(&uc, &j, &err) ||
        (uc.precision = (int)prec, uc.conv_algo = conv_algo, sld_unet_load(&u, &uc, w, &err))) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    sld_json_free(&j);
    double ra, rf;
    rss_split(&ra, &rf);
    fprintf(stderr,
            "unet load %.1f s, store keeps %.0f MiB converted, rss anon %.0f + file %.0f MiB\n",
            sld_time_now() - tl, sld_weights_converted_bytes(w) / 1048576.0, ra, rf);
    const int h = 64, wd = 64, nc = 77, D = uc.cross_attention_dim;
    const int batches[2] = {1, 3};
    for (int bi = 0; bi < 2; bi++) {
        int B = batches[bi];
        if (skip_unet || (only_batch && B != only_batch))
            continue;
        size_t nx = (size_t)B * 4 * h * wd;
        float *x = malloc(nx * sizeof *x), *y = malloc(nx * sizeof *y);
        float *ctx = malloc(sizeof(float) * B * nc * D), ts[3] = {981, 981, 981};
        uint64_t s = 7;
        for (size_t i = 0; i < nx; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            x[i] = (float)((s >> 40) & 0xffff) / 32768.0f - 1.0f;
        }
        for (size_t i = 0; i < (size_t)B * nc * D; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            ctx[i] = (float)((s >> 40) & 0xffff) / 32768.0f - 1.0f;
        }
        double tv[64];
        sld_prof pacc = {0};
        for (int r = 0; r < reps; r++) {
            double t0 = sld_time_now();
            if (sld_unet_forward(u, x, B, h, wd, ts, ctx, nc, y, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            tv[r] = sld_time_now() - t0;
            if (r > 0 || reps == 1) /* the first builds the primitives */
                prof_acc(&pacc, sld_unet_profile(u));
            fprintf(stderr, "unet b%d rep %d: %.3f s\n", B, r, tv[r]);
        }
        qsort(tv, (size_t)reps, sizeof tv[0], cmp_d);
        int fin;
        double cs = checksum(y, nx, &fin);
        char cname[64];
        snprintf(cname, sizeof cname, "unet_sd15_64x64_b%d", B);
        fprintf(stderr, "unet arena %.0f MiB, winograd weights %.1f MiB, largest scratchpad %.1f MiB\n",
                sld_unet_arena_bytes(u) / 1048576.0,
                sld_pack_winograd_weight_bytes() / 1048576.0,
                sld_pack_winograd_scratch_max() / 1048576.0);
        bench_csv_line(threads, pname, cname, tv[reps / 2], 803.0 * B, cs, peak_rss_mib());
        prof_print(&pacc, threads, pname, cname);
        if (!fin) {
            fprintf(stderr, "%s: non-finite output\n", cname);
            return 1;
        }
        free(x);
        free(y);
        free(ctx);
    }
    sld_unet_free(u);
    sld_weights_free(w);
    sld_st_close(f);

vae: /* ---- VAE decode ---- */
    if (!skip_vae) {
        sld_vae_config vc;
        sld_vae *v = NULL;
        if (!open_part(dir, "vae", &f, &w, &j))
            return 1;
        if (sld_vae_config_from_json(&vc, &j, &err) ||
            (vc.precision = (int)prec, vc.conv_algo = conv_algo, sld_vae_load(&v, &vc, w, &err))) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        sld_json_free(&j);
        size_t nz = 4 * 64 * 64, ni = (size_t)3 * 512 * 512;
        float *z = malloc(nz * sizeof *z), *img = malloc(ni * sizeof *img);
        uint64_t s = 11;
        for (size_t i = 0; i < nz; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            z[i] = (float)((s >> 40) & 0xffff) / 32768.0f - 1.0f;
        }
        double tv[64];
        sld_prof pacc = {0};
        for (int r = 0; r < reps; r++) {
            double t0 = sld_time_now();
            if (sld_vae_decode(v, z, 1, 64, 64, img, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            tv[r] = sld_time_now() - t0;
            if (r > 0 || reps == 1)
                prof_acc(&pacc, sld_vae_profile(v));
            fprintf(stderr, "vae rep %d: %.3f s\n", r, tv[r]);
        }
        qsort(tv, (size_t)reps, sizeof tv[0], cmp_d);
        int fin;
        double cs = checksum(img, ni, &fin);
        fprintf(stderr, "vae arena %.0f MiB, winograd weights %.1f MiB, largest scratchpad %.1f MiB\n",
                sld_vae_arena_bytes(v) / 1048576.0, sld_pack_winograd_weight_bytes() / 1048576.0,
                sld_pack_winograd_scratch_max() / 1048576.0);
        bench_csv_line(threads, pname, "vae_decode_512", tv[reps / 2], 2515.0, cs,
                       peak_rss_mib());
        prof_print(&pacc, threads, pname, "vae_decode_512");
        if (!fin) {
            fprintf(stderr, "vae_decode_512: non-finite output\n");
            return 1;
        }
        free(z);
        free(img);
        sld_vae_free(v);
        sld_weights_free(w);
        sld_st_close(f);
    }
    return 0;
}
