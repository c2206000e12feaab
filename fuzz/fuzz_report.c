/* fuzz_report.c — libFuzzer target for the I2P report's readers: the input
 * is a run folder's eval.jsonl (and generate.jsonl), optionally followed by
 * "\n===\n" and a manifest.json; every rendering is produced. No crash, no
 * leak, no out-of-bounds access, whatever the records hold. */
#include "core/core.h"
#include "sld.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put(const char *dir, const char *name, const uint8_t *d, size_t n)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f)
        return;
    if (n)
        fwrite(d, 1, n, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/sld_fuzz_report_%ld", (long)getpid());
        mkdir(dir, 0700);
    }
    size_t split = size;
    for (size_t i = 0; i + 5 <= size; i++)
        if (!memcmp(data + i, "\n===\n", 5)) {
            split = i;
            break;
        }
    put(dir, "eval.jsonl", data, split);
    put(dir, "generate.jsonl", data, split);
    char mp[512];
    snprintf(mp, sizeof mp, "%s/manifest.json", dir);
    if (split < size)
        put(dir, "manifest.json", data + split + 5, size - split - 5);
    else
        unlink(mp);
    sld_i2p_report_opts o;
    sld_i2p_report_opts_default(&o);
    const char *runs[1] = {dir};
    o.runs = runs;
    o.n_runs = 1;
    o.ci_draws = 10;
    sld_i2p_report *r;
    if (sld_i2p_report_from_runs(&r, &o, NULL) == SLD_OK) {
        char *s[4] = {sld_i2p_report_markdown(r), sld_i2p_report_json(r),
                      sld_i2p_report_latex(r), sld_i2p_report_html(r)};
        for (int i = 0; i < 4; i++)
            free(s[i]);
        sld_i2p_report_free(r);
    }
    return 0;
}
