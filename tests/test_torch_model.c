/* test_torch_model.c — PyTorch checkpoints where weights are read:
 * pth/tiny-sd1.ckpt generates the same image as tiny-sd1.safetensors, bit
 * for bit; a diffusers folder whose components hold only .bin files (made
 * here with sld_checkpoint_convert) the same as the safetensors folder, the
 * safety checker included; .safetensors preferred when both exist; and
 * sld_checkpoint_convert round-trips every fixture case. */
#include "core/core.h"
#include "io/safetensors.h"
#include "pipeline/model.h"
#include "test.h"

#include <sys/stat.h>
#include <unistd.h>

static char g_tmp[256];

static const char *tmp(const char *rel)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmp, rel);
    return buf[k];
}

static char *fx_abs(const char *rel)
{
    char *r = realpath(fixture(rel), NULL);
    return r ? r : strdup(fixture(rel));
}

/* One small generation; returns 0 and fills r on success. */
static int gen(const char *model, const char *cfg, sld_gen_result *r)
{
    sld_error err;
    sld_model_opts o;
    sld_model_opts_default(&o);
    o.config_dir = cfg;
    sld_model *m = NULL;
    sld_ctx *c = NULL;
    int rc = -1;
    if (sld_model_open(&m, model, &o, &err) || sld_ctx_new(&c, m, 1, &err)) {
        printf("  %s: %s\n", model, err.msg);
        goto done;
    }
    sld_gen_params p;
    sld_gen_params_default(&p);
    p.prompt = "a photo of a cat";
    p.steps = 3;
    p.seed = 1234;
    p.safety_checker = 1;
    if (sld_generate(c, &p, r, &err)) {
        printf("  %s: %s\n", model, err.msg);
        goto done;
    }
    rc = 0;
done:
    sld_ctx_free(c);
    sld_model_close(m);
    return rc;
}

static int same_image(const sld_gen_result *a, const sld_gen_result *b)
{
    if (a->n != b->n || a->width != b->width || a->height != b->height)
        return 0;
    size_t n = (size_t)a->n * (size_t)a->width * (size_t)a->height * 3;
    return !memcmp(a->pixels, b->pixels, n) &&
           !memcmp(a->image_float, b->image_float, n * sizeof(float));
}

static void test_ckpt_same_image(void)
{
    char *cfg = fx_abs("models/tiny-sd1");
    char *st = fx_abs("models/tiny-sd1.safetensors");
    char *ck = fx_abs("pth/tiny-sd1.ckpt");
    sld_gen_result a = {0}, b = {0};
    CHECK(gen(st, cfg, &a) == 0);
    CHECK(gen(ck, cfg, &b) == 0);
    CHECK(a.n == 1 && same_image(&a, &b));
    sld_gen_result_free(&a);
    sld_gen_result_free(&b);
    /* the loader takes the state dict and binds every UNet tensor */
    sld_model_opts o;
    sld_model_opts_default(&o);
    o.config_dir = cfg;
    sld_model *m;
    sld_error err;
    if (sld_model_open(&m, ck, &o, &err) == SLD_OK) {
        CHECK(!strcmp(sld_model_name(m), "tiny-sd1"));
        CHECK(sld_weights_used_count(m->w_unet) == 684);
        CHECK(!strcmp(sld_st_format(m->files[0]), "PyTorch zip"));
        sld_model_close(m);
    } else {
        CHECK_MSG(0, "%s", err.msg);
    }
    free(cfg);
    free(st);
    free(ck);
}

static void convert_component(const char *dir, const char *sub, const char *from, const char *to)
{
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/%s/%s", dir, sub, from);
    snprintf(b, sizeof b, "%s/%s/%s", dir, sub, to);
    sld_error err;
    CHECK_MSG(sld_checkpoint_convert(a, b, NULL, &err) == SLD_OK, "%s", err.msg);
    CHECK(unlink(a) == 0);
}

static void test_bin_folder(void)
{
    char *src = fx_abs("models/tiny-sd1");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", src, tmp("bin"));
    CHECK(system(cmd) == 0);
    char d[512];
    snprintf(d, sizeof d, "%s", tmp("bin"));
    convert_component(d, "text_encoder", "model.safetensors", "pytorch_model.bin");
    convert_component(d, "unet", "diffusion_pytorch_model.safetensors",
                      "diffusion_pytorch_model.bin");
    convert_component(d, "vae", "diffusion_pytorch_model.safetensors",
                      "diffusion_pytorch_model.bin");
    convert_component(d, "safety_checker", "model.safetensors", "pytorch_model.bin");
    sld_gen_result a = {0}, b = {0};
    CHECK(gen(src, NULL, &a) == 0);
    CHECK(gen(d, NULL, &b) == 0);
    CHECK(a.n == 1 && same_image(&a, &b));
    CHECK(a.nsfw && b.nsfw && a.nsfw[0] == b.nsfw[0]);
    sld_gen_result_free(&a);
    sld_gen_result_free(&b);

    /* both present: the .safetensors file is the one bound */
    char unet_st[600], unet_src[600];
    snprintf(unet_st, sizeof unet_st, "%s/unet/diffusion_pytorch_model.safetensors", d);
    snprintf(unet_src, sizeof unet_src, "%s/unet/diffusion_pytorch_model.safetensors", src);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", unet_src, unet_st);
    CHECK(system(cmd) == 0);
    sld_model *m;
    sld_error err;
    if (sld_model_open(&m, d, NULL, &err) == SLD_OK) {
        CHECK(!strcmp(sld_weights_label(m->w_unet), "unet/diffusion_pytorch_model.safetensors"));
        CHECK(!strcmp(sld_weights_label(m->w_vae), "vae/diffusion_pytorch_model.bin"));
        sld_model_close(m);
    } else {
        CHECK_MSG(0, "%s", err.msg);
    }
    free(src);
}

/* convert -> read back -> equal, for every case in both formats, plus casts. */
static void test_convert_roundtrip(void)
{
    const char *cases[] = {"dtypes", "views", "ckpt"}, *fmts[] = {"zip", "legacy"};
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 2; k++) {
            char in[128], ex[128];
            snprintf(in, sizeof in, "pth/%s.%s.pth", cases[c], fmts[k]);
            snprintf(ex, sizeof ex, "pth/%s.expected.safetensors", cases[c]);
            char *ip = fx_abs(in), *ep = fx_abs(ex);
            sld_convert_opts o = {SLD_CONVERT_KEEP, 1};
            sld_error err;
            const char *out = tmp("rt.safetensors");
            CHECK_MSG(sld_checkpoint_convert(ip, out, &o, &err) == SLD_OK, "%s", err.msg);
            sld_st_file *g = NULL, *w = NULL;
            CHECK(sld_st_open(&g, out, &err) == SLD_OK);
            CHECK(sld_st_open(&w, ep, &err) == SLD_OK);
            if (g && w) {
                CHECK(!strcmp(sld_st_format(g), "safetensors"));
                CHECK(sld_st_count(g) == sld_st_count(w));
                for (int i = 0; i < sld_st_count(w); i++) {
                    const sld_st_tensor *x = sld_st_at(w, i), *y = sld_st_find(g, x->name);
                    CHECK_MSG(y && y->dtype == x->dtype && y->nbytes == x->nbytes &&
                                  y->ndim == x->ndim &&
                                  (!x->nbytes || !memcmp(y->data, x->data, x->nbytes)),
                              "%s: %s", in, x->name);
                }
                if (c == 2)
                    CHECK(sld_st_meta(g, "epoch") && !strcmp(sld_st_meta(g, "epoch"), "3"));
            }
            sld_st_close(g);
            g = NULL;
            /* cast to f32: floats become F32 with the same values, others kept */
            o.dtype = SLD_CONVERT_F32;
            CHECK(sld_checkpoint_convert(ip, out, &o, &err) == SLD_OK);
            CHECK(sld_st_open(&g, out, &err) == SLD_OK);
            for (int i = 0; g && w && i < sld_st_count(w); i++) {
                const sld_st_tensor *x = sld_st_at(w, i), *y = sld_st_find(g, x->name);
                if (!y) {
                    CHECK(0);
                    continue;
                }
                bool fl = x->dtype == SLD_DT_F32 || x->dtype == SLD_DT_F16 ||
                          x->dtype == SLD_DT_BF16 || x->dtype == SLD_DT_F64;
                CHECK(y->dtype == (fl ? SLD_DT_F32 : x->dtype) && y->numel == x->numel);
                if (fl && x->numel) {
                    float *v = malloc(x->numel * 4);
                    sld_st_to_f32(x, v, &err);
                    CHECK(!memcmp(v, y->data, x->numel * 4));
                    free(v);
                }
            }
            sld_st_close(g);
            sld_st_close(w);
            free(ip);
            free(ep);
        }
}

int main(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/sld_test_torch_model_%ld", (long)getpid());
    mkdir(g_tmp, 0700);
    RUN(test_ckpt_same_image);
    RUN(test_bin_folder);
    RUN(test_convert_roundtrip);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0)
        printf("  could not remove %s\n", g_tmp);
    TEST_END();
}
