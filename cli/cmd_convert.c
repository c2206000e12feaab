/* cmd_convert.c — `sld convert IN -o OUT [--dtype f16|bf16|f32] [--all]` and
 * `sld convert --list IN`: any readable checkpoint (.safetensors, PyTorch
 * .ckpt/.pth/.pt/.bin) to .safetensors (or a torch.save zip file when OUT
 * ends in .ckpt/.pth/.pt/.bin), and a listing of names, dtypes and shapes. */
#include "cli.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char *CONVERT_USAGE =
    "usage: sld convert IN -o OUT.safetensors [--dtype f16|bf16|f32] [--all]\n"
    "       sld convert --list IN [--all]\n"
    "  IN        .safetensors, or a PyTorch checkpoint (.ckpt .pth .pt .bin, zip or legacy\n"
    "            format), read without running any code from it\n"
    "  -o OUT    .safetensors; or .ckpt/.pth/.pt/.bin for a torch.save zip file\n"
    "            (.ckpt nests the tensors under \"state_dict\")\n"
    "  --dtype   cast floating tensors (integer and bool tensors are kept)\n"
    "  --all     every tensor in the file, by full object path (default: the state\n"
    "            dict's tensors under their own names, as the loaders see them)\n"
    "  --list    print 'name dtype [shape]' per tensor, then 'name = value' per\n"
    "            non-tensor value (epoch, global_step, ...)\n";

typedef struct {
    int n;
    bool header;
} list_state;

static int print_entry(const sld_checkpoint_entry *e, void *user)
{
    list_state *s = user;
    if (!s->header) {
        printf("# %s%s%s%s\n", e->format, *e->root ? ", state dict '" : "", e->root,
               *e->root ? "'" : "");
        s->header = true;
    }
    if (e->value) {
        printf("%s = %s\n", e->name, e->value);
        return 0;
    }
    printf("%s %s [", e->name, e->dtype);
    for (int d = 0; d < e->ndim; d++)
        printf(d ? ",%lld" : "%lld", (long long)e->shape[d]);
    printf("]\n");
    s->n++;
    return 0;
}

int cmd_convert(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *dt = NULL;
    int list = 0, all = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(CONVERT_USAGE, stdout);
            return 0;
        }
        if (!strcmp(a, "--list")) {
            list = 1;
        } else if (!strcmp(a, "--all")) {
            all = 1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--dtype")) {
            if (i + 1 >= argc)
                return cli_usage_error("convert", "'%s' needs a value", a);
            if (!strcmp(a, "--dtype"))
                dt = argv[++i];
            else
                out = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("convert", "unknown option '%s'", a);
        } else if (!in) {
            in = a;
        } else {
            return cli_usage_error("convert", "one input only ('%s' and '%s')", in, a);
        }
    }
    if (!in)
        return cli_usage_error("convert", "no input checkpoint given");
    sld_error err;
    if (list) {
        if (out || dt)
            return cli_usage_error("convert", "--list takes no -o or --dtype");
        list_state s = {0, false};
        if (sld_checkpoint_list(in, all, print_entry, &s, &err))
            return cli_fail(&err);
        return 0;
    }
    if (!out)
        return cli_usage_error("convert", "-o OUT is required (or --list)");
    sld_convert_opts o = {SLD_CONVERT_KEEP, all};
    if (dt) {
        if (!strcmp(dt, "f16") || !strcmp(dt, "fp16") || !strcmp(dt, "float16"))
            o.dtype = SLD_CONVERT_F16;
        else if (!strcmp(dt, "bf16") || !strcmp(dt, "bfloat16"))
            o.dtype = SLD_CONVERT_BF16;
        else if (!strcmp(dt, "f32") || !strcmp(dt, "fp32") || !strcmp(dt, "float32"))
            o.dtype = SLD_CONVERT_F32;
        else
            return cli_usage_error("convert", "--dtype wants f16, bf16 or f32, not '%s'", dt);
    }
    if (sld_checkpoint_convert(in, out, &o, &err))
        return cli_fail(&err);
    return 0;
}
