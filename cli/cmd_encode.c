/* cmd_encode.c — `sld encode --model PATH --prompt TEXT -o OUT.safetensors`:
 * writes the prompt's CLIP embedding as tensor "last_hidden_state"
 * [1,77,H] float32 (what diffusers feeds the UNet). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *ENCODE_USAGE =
    "usage: sld encode --model PATH --prompt TEXT -o OUT.safetensors [--threads N]\n"
    "                  [--config DIR]\n"
    "  --model    diffusers folder or single-file .safetensors checkpoint\n"
    "  --config   diffusers folder to take configs from (single files)\n";

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
            return cli_missing_value("encode", a, ENCODE_USAGE, "--output");
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
    const char *names[1] = {"last_hidden_state"};
    const int nd[1] = {3};
    const int64_t *shapes[1] = {shape};
    const float *data[1] = {emb};
    if (sld_tensors_write_f32(out, 1, names, nd, shapes, data, &err)) {
        rc = cli_fail(&err);
        goto done;
    }
    rc = 0;
done:
    free(emb);
    sld_ctx_free(c);
    sld_model_close(m);
    return rc;
}
