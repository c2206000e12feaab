/* cmd_debug.c — `sld debug run` (one network on tensors named as the
 * diffusers arguments) and `sld debug make-random` (a full-size model with
 * seeded random weights, for benchmarks without downloads). */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *DEBUG_USAGE =
    "usage: sld debug run --model PATH --module NAME --inputs IN.safetensors -o OUT.safetensors\n"
    "                     [--threads N] [--config DIR]\n"
    "         NAME: text_encoder (input_ids -> last_hidden_state), unet, vae_decode,\n"
    "               vae_encode, clip_vision\n"
    "       sld debug make-random --arch sd15|sd21 -o DIR [--seed N]\n";

static int usage(const char *fmt, const char *arg)
{
    return cli_usage_error("debug", fmt, arg);
}

static int debug_run(int argc, char **argv)
{
    const char *model = NULL, *module = NULL, *inputs = NULL, *out = NULL, *cfg = NULL;
    long long threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(DEBUG_USAGE, stdout);
            return 0;
        }
        if (i + 1 >= argc)
            return usage("'%s' needs a value or is unknown", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--module"))
            module = v;
        else if (!strcmp(a, "--inputs"))
            inputs = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            out = v;
        else if (!strcmp(a, "--config"))
            cfg = v;
        else if (!strcmp(a, "--threads")) {
            if (cli_parse_int(v, 0, 4096, &threads))
                return usage("--threads wants an integer 0..4096, not '%s'", v);
        } else
            return usage("unknown option '%s'", a);
    }
    if (!model || !module || !inputs || !out)
        return usage("run needs --model, --module, --inputs and -o%s", "");
    static const char *const mods[] = {"text_encoder", "unet", "vae_decode", "vae_encode",
                                       "clip_vision"};
    int known = 0;
    for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++)
        known |= !strcmp(module, mods[i]);
    if (!known)
        return usage("unknown module '%s'", module);

    sld_error err;
    if (!strcmp(module, "clip_vision")) {
        /* a transformers CLIP folder (no model_index.json) runs on its own;
         * an SD folder runs its safety checker's vision tower */
        char probe[4096];
        snprintf(probe, sizeof probe, "%s/model_index.json", model);
        if (access(probe, F_OK) != 0)
            return sld_debug_run_clip_vision_dir(model, inputs, out, (int)threads, &err)
                       ? cli_fail(&err)
                       : 0;
    }
    sld_model_opts o;
    sld_model_opts_default(&o);
    o.config_dir = cfg;
    sld_model *m = NULL;
    sld_ctx *c = NULL;
    int rc = 0;
    if (sld_model_open(&m, model, &o, &err) || sld_ctx_new(&c, m, (int)threads, &err) ||
        sld_debug_run(c, module, inputs, out, &err))
        rc = cli_fail(&err);
    sld_ctx_free(c);
    sld_model_close(m);
    return rc;
}

static int debug_make_random(int argc, char **argv)
{
    const char *arch = NULL, *out = NULL;
    unsigned long long seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(DEBUG_USAGE, stdout);
            return 0;
        }
        if (i + 1 >= argc)
            return usage("'%s' needs a value or is unknown", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--arch"))
            arch = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            out = v;
        else if (!strcmp(a, "--seed")) {
            if (cli_parse_u64(v, &seed))
                return usage("--seed wants a non-negative integer, not '%s'", v);
        } else
            return usage("unknown option '%s'", a);
    }
    if (!arch || !out)
        return usage("make-random needs --arch and -o%s", "");
    if (strcmp(arch, "sd15") && strcmp(arch, "sd21"))
        return usage("--arch must be sd15 or sd21, not '%s'", arch);
    sld_error err;
    if (sld_make_random(arch, out, (uint64_t)seed, &err))
        return cli_fail(&err);
    return 0;
}

int cmd_debug(int argc, char **argv)
{
    if (argc < 2)
        return usage("missing subcommand (run or make-random)%s", "");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        fputs(DEBUG_USAGE, stdout);
        return 0;
    }
    if (!strcmp(sub, "run"))
        return debug_run(argc - 1, argv + 1);
    if (!strcmp(sub, "make-random"))
        return debug_make_random(argc - 1, argv + 1);
    return usage("unknown subcommand '%s' (run or make-random)", sub);
}
