/* cmd_encode.c — `sld encode --model PATH --prompt TEXT -o OUT.safetensors`:
 * writes the prompt's CLIP embedding as tensor "last_hidden_state"
 * [1,77,H] float32 (what diffusers feeds the UNet). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *ENCODE_USAGE =
    "usage: sld encode --model PATH --prompt TEXT -o OUT.safetensors [--threads N]\n"
    "                  [--config DIR]\n"
    "  --model    diffusers folder or single-file .safetensors checkpoint\n"
    "  --config   diffusers folder to take configs from (single files)\n";

/* One float32 tensor as safetensors, atomically (temp file + rename). The
 * CLI sees only sld.h, and the format is simple enough to write here. */
static int write_tensor(const char *path, const char *name, const int64_t *shape, int ndim,
                        const float *data, char *why, size_t why_len)
{
    size_t n = 1;
    char dims[128] = "";
    size_t o = 0;
    for (int i = 0; i < ndim; i++) {
        n *= (size_t)shape[i];
        o += (size_t)snprintf(dims + o, sizeof dims - o, i ? ",%lld" : "%lld",
                              (long long)shape[i]);
    }
    char hdr[512];
    int hl = snprintf(hdr, sizeof hdr,
                      "{\"%s\":{\"dtype\":\"F32\",\"shape\":[%s],\"data_offsets\":[0,%zu]}}", name,
                      dims, n * sizeof(float));
    while (hl % 8) /* keep the data block 8-byte aligned, as the format suggests */
        hdr[hl++] = ' ';
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(why, why_len, "%s: cannot create", path);
        return -1;
    }
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(hdr, 1, (size_t)hl, f) == (size_t)hl &&
             fwrite(data, sizeof(float), n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path)) {
        remove(tmp);
        snprintf(why, why_len, "%s: write failed", path);
        return -1;
    }
    return 0;
}

int cmd_encode(int argc, char **argv)
{
    const char *model = NULL, *prompt = NULL, *out = NULL, *cfg = NULL;
    long long threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(ENCODE_USAGE, stdout);
            return 0;
        }
        if (i + 1 >= argc)
            return cli_usage_error("encode", "'%s' needs a value or is unknown", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--prompt"))
            prompt = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            out = v;
        else if (!strcmp(a, "--config"))
            cfg = v;
        else if (!strcmp(a, "--threads")) {
            if (cli_parse_int(v, 0, 4096, &threads))
                return cli_usage_error("encode", "--threads wants an integer 0..4096, not '%s'", v);
        } else
            return cli_usage_error("encode", "unknown option '%s'", a);
    }
    if (!model || !prompt || !out)
        return cli_usage_error("encode", "--model, --prompt and -o are required");

    sld_error err;
    sld_model_opts o;
    sld_model_opts_default(&o);
    o.config_dir = cfg;
    sld_model *m = NULL;
    sld_ctx *c = NULL;
    float *emb = NULL;
    int rc = 1;
    if (sld_model_open(&m, model, &o, &err) || sld_ctx_new(&c, m, (int)threads, &err)) {
        rc = cli_fail(&err);
        goto done;
    }
    const int H = sld_model_text_dim(m);
    emb = malloc(sizeof(float) * SLD_N_CTX * (size_t)H);
    if (!emb) {
        fprintf(stderr, "sld: out of memory\n");
        goto done;
    }
    if (sld_encode(c, prompt, emb, &err)) {
        rc = cli_fail(&err);
        goto done;
    }
    int64_t shape[3] = {1, SLD_N_CTX, H};
    char why[512];
    if (write_tensor(out, "last_hidden_state", shape, 3, emb, why, sizeof why)) {
        fprintf(stderr, "sld: %s\n", why);
        goto done;
    }
    rc = 0;
done:
    free(emb);
    sld_ctx_free(c);
    sld_model_close(m);
    return rc;
}
