/* test_vae.c — AutoencoderKL vs diffusers goldens (tiny-sd1 8x8 -> 64x64,
 * tiny-sd2 12x12 -> 96x96): decode (latents / 0.18215, * 1/0.18215, raw),
 * decoder intermediates, encode mean/logvar; config, old attention names,
 * errors; and the single files through the loader. */
#include "io/json.h"
#include "io/safetensors.h"
#include "model/vae.h"
#include "model/weights.h"
#include "ops/packed.h"
#include "pipeline/model.h"
#include "test.h"
#include "test_util.h"

#include <unistd.h>

typedef struct {
    t_component c;
    sld_vae *v;
    sld_vae_config cfg;
} net;

static int net_open_algo(net *n, const char *model, int conv_algo)
{
    sld_error err;
    memset(n, 0, sizeof *n);
    if (!t_component_open(&n->c, model, "vae", "diffusion_pytorch_model.safetensors"))
        return 0;
    if (!sld_vae_config_from_json(&n->cfg, &n->c.cfg, &err))
        n->cfg.conv_algo = conv_algo;
    if (n->cfg.conv_algo != conv_algo || sld_vae_load(&n->v, &n->cfg, n->c.w, &err)) {
        printf("  %s\n", err.msg);
        return 0;
    }
    return 1;
}

static int net_open(net *n, const char *model) { return net_open_algo(n, model, 0); }

static void net_close(net *n)
{
    sld_vae_free(n->v);
    t_component_close(&n->c);
}

static float *golden(const sld_st_file *g, const char *name, size_t *numel)
{
    const sld_st_tensor *t = g ? sld_st_find(g, name) : NULL;
    if (!t) {
        printf("  golden '%s' missing\n", name);
        return NULL;
    }
    float *d = malloc(t->numel * sizeof *d);
    sld_error err;
    if (sld_st_to_f32(t, d, &err)) {
        free(d);
        return NULL;
    }
    if (numel)
        *numel = t->numel;
    return d;
}

static const sld_st_file *tap_gold;
static int tap_seen;

static void tap_cmp(void *user, const char *name, const float *x, int B, int C, int H, int W)
{
    (void)user;
    char key[128];
    snprintf(key, sizeof key, "intermediate_decode_div/%s", name);
    if (!sld_st_find(tap_gold, key))
        return; /* only some levels were recorded */
    size_t n = 0;
    float *want = golden(tap_gold, key, &n);
    CHECK(want && n == (size_t)B * C * H * W);
    if (want && n == (size_t)B * C * H * W)
        CHECK_CLOSE(key, x, want, n, 1e-4);
    free(want);
    tap_seen++;
}

/* decode/encode goldens of one model through v */
static void check_model(sld_vae *v, const char *gold, int S, bool taps)
{
    sld_st_file *g = NULL;
    sld_error err;
    CHECK(sld_st_open(&g, fixture(gold), &err) == SLD_OK);
    if (!g)
        return;
    const int P = 8 * S;
    size_t nl = (size_t)4 * S * S, ni = (size_t)3 * P * P;
    float *lat = golden(g, "latents", NULL), *z = malloc(nl * sizeof *z);
    float *img = malloc(ni * sizeof *img);
    const float sf = sld_vae_cfg(v)->scaling_factor;
    CHECK(sf == 0.18215f);
    static const char *const keys[3] = {"decode_div_scaling", "decode_mul_inv_scaling",
                                        "decode_raw"};
    for (int k = 0; k < 3 && lat; k++) {
        for (size_t i = 0; i < nl; i++)
            z[i] = k == 0 ? lat[i] / sf : k == 1 ? (1.0f / sf) * lat[i] : lat[i];
        tap_gold = g;
        tap_seen = 0;
        sld_vae_set_tap(v, taps && k == 0 ? tap_cmp : NULL, NULL);
        CHECK(sld_vae_decode(v, z, 1, S, S, img, &err) == SLD_OK);
        if (taps && k == 0)
            CHECK(tap_seen == 5);
        float *want = golden(g, keys[k], NULL);
        if (want)
            CHECK_CLOSE(keys[k], img, want, ni, 1e-4);
        free(want);
    }
    sld_vae_set_tap(v, NULL, NULL);
    float *x = golden(g, "encode_input", NULL);
    float *mean = malloc(nl * sizeof *mean), *lv = malloc(nl * sizeof *lv);
    if (x) {
        CHECK(sld_vae_encode(v, x, 1, P, P, mean, lv, &err) == SLD_OK);
        float *wm = golden(g, "encode_mean", NULL), *wl = golden(g, "encode_logvar", NULL);
        if (wm)
            CHECK_CLOSE("encode_mean", mean, wm, nl, 1e-4);
        if (wl)
            CHECK_CLOSE("encode_logvar", lv, wl, nl, 1e-4);
        free(wm);
        free(wl);
    }
    /* Decode again after encode (shared arena) is unchanged. */
    if (lat) {
        for (size_t i = 0; i < nl; i++)
            z[i] = lat[i];
        CHECK(sld_vae_decode(v, z, 1, S, S, img, &err) == SLD_OK);
        float *want = golden(g, "decode_raw", NULL);
        if (want)
            CHECK_CLOSE("decode_raw again", img, want, ni, 1e-4);
        free(want);
    }
    free(x);
    free(mean);
    free(lv);
    free(lat);
    free(z);
    free(img);
    sld_st_close(g);
}

static void test_sd1(void)
{
    net n;
    CHECK(net_open(&n, "models/tiny-sd1"));
    if (n.v)
        check_model(n.v, "vae/sd1.safetensors", 8, true);
    net_close(&n);
}

static void test_sd2(void)
{
    net n;
    CHECK(net_open(&n, "models/tiny-sd2"));
    if (n.v)
        check_model(n.v, "vae/sd2.safetensors", 12, false);
    net_close(&n);
}

/* Winograd (the default) against direct convolution on the decode goldens:
 * the tiny decoders run 32^2 and 64^2 (tiny-sd2: 48^2, 96^2) 3x3 convs in
 * Winograd; each path must hold the golden tolerance and they differ only
 * by rounding. */
static void test_winograd_vs_direct(void)
{
    const char *models[2] = {"models/tiny-sd1", "models/tiny-sd2"};
    const char *golds[2] = {"vae/sd1.safetensors", "vae/sd2.safetensors"};
    const int sizes[2] = {8, 12};
    for (int m = 0; m < 2; m++) {
        net a, d;
        sld_st_file *g = NULL;
        sld_error err;
        CHECK(net_open_algo(&a, models[m], 0) && net_open_algo(&d, models[m], 1));
        CHECK(sld_st_open(&g, fixture(golds[m]), &err) == SLD_OK);
        int S = sizes[m], P = 8 * S;
        size_t ni = (size_t)3 * P * P;
        float *lat = g ? golden(g, "latents", NULL) : NULL;
        float *want = g ? golden(g, "decode_raw", NULL) : NULL;
        float *ya = malloc(ni * sizeof *ya), *yd = malloc(ni * sizeof *yd);
        if (a.v && d.v && lat && want) {
            CHECK(sld_vae_decode(a.v, lat, 1, S, S, ya, &err) == SLD_OK);
            CHECK(sld_vae_decode(d.v, lat, 1, S, S, yd, &err) == SLD_OK);
            double ea = 0, ed = 0, ead = 0;
            for (size_t i = 0; i < ni; i++) {
                ea = fmax(ea, fabs((double)ya[i] - want[i]));
                ed = fmax(ed, fabs((double)yd[i] - want[i]));
                ead = fmax(ead, fabs((double)ya[i] - yd[i]));
            }
            printf("  %s decode_raw max|d| vs golden: winograd %.3g, direct %.3g; "
                   "winograd vs direct %.3g\n",
                   models[m], ea, ed, ead);
            CHECK(ea <= 1e-4 && ed <= 1e-4 && ead <= 1e-5);
            /* Winograd really ran where the CPU has it; never in direct */
            CHECK(sld_pack_winograd_available() ? ead > 0 : ead == 0);
        }
        free(lat), free(want), free(ya), free(yd);
        sld_st_close(g);
        net_close(&a);
        net_close(&d);
    }
}

static void test_config(void)
{
    net n;
    sld_error err;
    CHECK(net_open(&n, "models/tiny-sd1"));
    if (!n.v)
        goto out;
    CHECK(n.cfg.n_blocks == 4 && n.cfg.block_out_channels[3] == 64);
    CHECK(n.cfg.layers_per_block == 2 && n.cfg.latent_channels == 4);
    CHECK(n.cfg.scaling_factor == 0.18215f); /* the file has no scaling_factor key */
    sld_vae_config c;
    CHECK(sld_vae_config_infer(&c, n.c.w, &err) == SLD_OK);
    CHECK(c.n_blocks == 4 && c.block_out_channels[1] == 32 && c.block_out_channels[2] == 64);
    CHECK(c.layers_per_block == 2 && c.latent_channels == 4 && c.in_channels == 3 &&
          c.out_channels == 3);
    /* Wrong widths: a shape error naming a tensor. */
    c.block_out_channels[3] = 32;
    sld_vae *v = NULL;
    CHECK(sld_vae_load(&v, &c, n.c.w, &err) == SLD_ERR_SHAPE && v == NULL);
    CHECK(strstr(err.msg, "expected [") != NULL);
    sld_json j;
    CHECK(sld_json_parse(&j, "{\"block_out_channels\":[32],\"act_fn\":\"gelu\"}", "v.json",
                         &err) == SLD_OK);
    CHECK(sld_vae_config_from_json(&c, &j, &err) == SLD_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "v.json") != NULL);
    sld_json_free(&j);
    CHECK(sld_json_parse(&j, "{\"block_out_channels\":[30]}", "v.json", &err) == SLD_OK);
    CHECK(sld_vae_config_from_json(&c, &j, &err) == SLD_ERR_CONFIG);
    sld_json_free(&j);
out:
    net_close(&n);
}

/* Pre-0.14 attention names (query/key/value/proj_attn) load the same model. */
static void test_old_names(void)
{
    sld_error err;
    sld_st_file *f = NULL;
    CHECK(sld_st_open(&f, fixture("models/tiny-sd2/vae/diffusion_pytorch_model.safetensors"),
                      &err) == SLD_OK);
    if (!f)
        return;
    sld_weights *w = NULL;
    CHECK(sld_weights_new(&w, "old", &err) == SLD_OK);
    static const char *const map[4][2] = {
        {"to_q", "query"}, {"to_k", "key"}, {"to_v", "value"}, {"to_out.0", "proj_attn"}};
    for (int i = 0; i < sld_st_count(f); i++) {
        const sld_st_tensor *t = sld_st_at(f, i);
        char name[256];
        snprintf(name, sizeof name, "%s", t->name);
        for (int k = 0; k < 4; k++) {
            char pat[64];
            snprintf(pat, sizeof pat, "attentions.0.%s.", map[k][0]);
            char *p = strstr(name, pat);
            if (p) {
                char tail[64];
                snprintf(tail, sizeof tail, "%s", p + strlen(pat));
                snprintf(p, sizeof name - (size_t)(p - name), "attentions.0.%s.%s", map[k][1],
                         tail);
            }
        }
        CHECK(sld_weights_add_view(w, name, t, 0, t->ndim, t->shape, &err) == SLD_OK);
    }
    CHECK(sld_weights_has(w, "decoder.mid_block.attentions.0.proj_attn.weight"));
    sld_vae_config c;
    sld_vae *v = NULL;
    CHECK(sld_vae_config_infer(&c, w, &err) == SLD_OK);
    CHECK(sld_vae_load(&v, &c, w, &err) == SLD_OK);
    CHECK(sld_weights_used_count(w) == sld_weights_count(w));
    if (v)
        check_model(v, "vae/sd2.safetensors", 12, false);
    sld_vae_free(v);
    sld_weights_free(w);
    sld_st_close(f);
}

static void test_single_files(void)
{
    const char *files[2] = {"models/tiny-sd1.safetensors", "models/tiny-sd2.safetensors"};
    const char *cfgs[2] = {"models/tiny-sd1", "models/tiny-sd2"};
    const char *golds[2] = {"vae/sd1.safetensors", "vae/sd2.safetensors"};
    const int S[2] = {8, 12};
    for (int k = 0; k < 2; k++) {
        char path[256], cdir[256];
        snprintf(path, sizeof path, "%s", fixture(files[k]));
        snprintf(cdir, sizeof cdir, "%s", fixture(cfgs[k]));
        sld_model_opts o;
        sld_model_opts_default(&o);
        o.config_dir = cdir;
        sld_model *m = NULL;
        sld_error err;
        sld_status st = sld_model_open(&m, path, &o, &err);
        CHECK_MSG(st == SLD_OK, "%s: %s", files[k], err.msg);
        if (st)
            continue;
        CHECK(m->vae != NULL);
        if (m->vae)
            check_model(m->vae, golds[k], S[k], false);
        sld_model_close(m);
    }
}

int main(void)
{
    RUN(test_config);
    RUN(test_sd1);
    RUN(test_sd2);
    RUN(test_winograd_vs_direct);
    RUN(test_old_names);
    RUN(test_single_files);
    TEST_END();
}
