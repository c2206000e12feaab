/* fuzz_quality_report.c — libFuzzer target for the quality report's reader
 * of a run folder's quality/features*.jsonl cache (sld i2p quality-report):
 * the input is the cache file (its lines also serve as generate.jsonl); the
 * quality manifest and a 4-wide .npz reference are fixed, made once. Every
 * rendering is produced. No crash, no leak, no out-of-bounds access,
 * whatever the records hold (base64 of any length, NaN, widths, keys). */
#include "core/core.h"
#include "io/npz.h"
#include "sld.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    if (n)
        fwrite(d, 1, n, f);
    fclose(f);
}

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/sld_fuzz_quality_%ld", (long)getpid());
    mkdir(dir, 0700);
    char p[512], q[512];
    snprintf(p, sizeof p, "%s/quality", dir);
    mkdir(p, 0700);
    /* reference statistics: mu [4], sigma = I [4,4] */
    double mu[4] = {0.1, 0.2, 0.3, 0.4}, sigma[16] = {0};
    for (int i = 0; i < 4; i++)
        sigma[i * 5] = 1;
    const char *keys[2] = {"mu", "sigma"};
    const double *d[2] = {mu, sigma};
    int nd[2] = {1, 2};
    int64_t s1[1] = {4}, s2[2] = {4, 4};
    const int64_t *shapes[2] = {s1, s2};
    snprintf(q, sizeof q, "%s/ref.npz", dir);
    if (sld_npz_write(q, 2, keys, d, nd, shapes, NULL))
        abort();
    char hex[65];
    if (sld_sha256_file(q, hex, NULL))
        abort();
    char m[1400];
    int n = snprintf(m, sizeof m,
                     "{\"format\": \"sld-quality/1\", \"sld_version\": \"fuzz\", \"reference\": "
                     "{\"path\": \"%s\", \"sha256\": \"%s\", \"kind\": \"npz\"}}",
                     q, hex);
    snprintf(p, sizeof p, "%s/quality-manifest.json", dir);
    put(p, m, (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0])
        setup();
    char p[512];
    snprintf(p, sizeof p, "%s/quality/features.jsonl", dir);
    put(p, data, size);
    snprintf(p, sizeof p, "%s/generate.jsonl", dir);
    put(p, data, size);
    sld_quality_report_opts o;
    sld_quality_report_opts_default(&o);
    o.run_dir = dir;
    o.kid_subsets = 3;
    o.n_threads = 1;
    sld_quality_report *r;
    if (sld_quality_report_from_run(&r, &o, NULL) == SLD_OK) {
        char *s[3] = {sld_quality_report_markdown(r), sld_quality_report_json(r),
                      sld_quality_report_html(r)};
        for (int i = 0; i < 3; i++)
            free(s[i]);
        sld_quality_report_free(r);
    }
    return 0;
}
