/*
 * make_random.c — `sld debug make-random`: a diffusers folder of the real
 * SD 1.5 ("sd15") or SD 2.1 ("sd21") architecture with seeded random fp16
 * weights, the real config files and the CLIP tokenizer files, so anyone can
 * benchmark and smoke-test at full size without a download.
 *
 * The UNet and VAE tensor lists come from the networks themselves
 * (sld_unet_tensors / sld_vae_tensors), so the folder always loads. Weights:
 * conv/linear U(-a, a) with std 1/sqrt(fan_in) (activations stay O(1)),
 * embeddings std 0.02, biases 0, norms gamma 1 / beta 0. Each tensor has its
 * own stream seeded from (seed, name), so results do not depend on order.
 * One file is held in memory at a time (SD 1.5 UNet: 1.7 GB of fp16).
 */
#include "io/json.h"
#include "io/safetensors.h"
#include "model/unet.h"
#include "model/vae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    sld_st_out *t;
    int n, cap;
    uint64_t seed;
    bool oom;
} gen;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static void gen_add(void *user, const char *name, int ndim, const int64_t *shape)
{
    gen *g = user;
    if (g->oom)
        return;
    if (g->n == g->cap) {
        int nc = g->cap ? 2 * g->cap : 512;
        sld_st_out *nt = sld_realloc(g->t, (size_t)nc * sizeof *nt);
        if (!nt) {
            g->oom = true;
            return;
        }
        g->t = nt;
        g->cap = nc;
    }
    sld_st_out *o = &g->t[g->n];
    memset(o, 0, sizeof *o);
    size_t numel = 1, fan_in = 1;
    for (int i = 0; i < ndim; i++) {
        o->shape[i] = shape[i];
        numel *= (size_t)shape[i];
        if (i)
            fan_in *= (size_t)shape[i];
    }
    char *nm = sld_strdup(name);
    uint16_t *d = sld_malloc(numel * sizeof *d);
    if (!nm || !d) {
        sld_free(nm);
        sld_free(d);
        g->oom = true;
        return;
    }
    o->name = nm;
    o->dtype = SLD_DT_F16;
    o->ndim = ndim;
    o->data = d;
    g->n++;
    bool norm = ndim == 1 && (strstr(name, "norm") != NULL);
    if (ndim == 1) {
        uint16_t v = norm && ends_with(name, ".weight") ? sld_f32_to_f16(1.0f) : 0;
        for (size_t i = 0; i < numel; i++)
            d[i] = v;
        return;
    }
    float std = strstr(name, "text_model.embeddings.") ? 0.02f : 1.0f / sqrtf((float)fan_in);
    float a = std * 1.7320508f;
    uint64_t s = g->seed ^ name_hash(name);
    for (size_t i = 0; i < numel; i++) {
        float u = (float)(splitmix(&s) >> 40) * (1.0f / 16777216.0f);
        d[i] = sld_f32_to_f16((2.0f * u - 1.0f) * a);
    }
}

static void gen_clear(gen *g)
{
    for (int i = 0; i < g->n; i++) {
        sld_free((void *)g->t[i].name);
        sld_free((void *)g->t[i].data);
    }
    g->n = 0;
}

static sld_status gen_write(gen *g, const char *dir, const char *sub, const char *file,
                            sld_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, file);
    const char *meta[2] = {"format", "pt"};
    sld_status st = g->oom ? sld_err(err, SLD_ERR_NOMEM, "make-random: out of memory")
                           : sld_st_write(path, g->t, g->n, meta, 1, err);
    gen_clear(g);
    g->oom = false;
    return st;
}

static sld_status write_text(const char *dir, const char *rel, const char *text, sld_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return sld_file_write_atomic(path, text, strlen(text), err);
}

static sld_status mkdir_p(const char *dir, const char *sub, sld_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", dir, sub ? "/" : "", sub ? sub : "");
    if (mkdir(path, 0755) && !sld_path_is_dir(path))
        return sld_err(err, SLD_ERR_IO, "make-random: cannot create folder '%s'", path);
    return SLD_OK;
}

/* CLIP text encoder (transformers CLIPTextModel names). */
static void clip_tensors(gen *g, int D, int layers)
{
    char n[160];
    int64_t s2[2], s1[1];
#define T2(a, b, ...)                                                                          \
    do {                                                                                       \
        snprintf(n, sizeof n, __VA_ARGS__);                                                    \
        s2[0] = (a);                                                                           \
        s2[1] = (b);                                                                           \
        gen_add(g, n, 2, s2);                                                                  \
    } while (0)
#define T1(a, ...)                                                                             \
    do {                                                                                       \
        snprintf(n, sizeof n, __VA_ARGS__);                                                    \
        s1[0] = (a);                                                                           \
        gen_add(g, n, 1, s1);                                                                  \
    } while (0)
    T2(49408, D, "text_model.embeddings.token_embedding.weight");
    T2(77, D, "text_model.embeddings.position_embedding.weight");
    static const char *const proj[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    for (int l = 0; l < layers; l++) {
        const char *p = "text_model.encoder.layers";
        for (int k = 0; k < 4; k++) {
            T2(D, D, "%s.%d.self_attn.%s.weight", p, l, proj[k]);
            T1(D, "%s.%d.self_attn.%s.bias", p, l, proj[k]);
        }
        T1(D, "%s.%d.layer_norm1.weight", p, l);
        T1(D, "%s.%d.layer_norm1.bias", p, l);
        T1(D, "%s.%d.layer_norm2.weight", p, l);
        T1(D, "%s.%d.layer_norm2.bias", p, l);
        T2(4 * D, D, "%s.%d.mlp.fc1.weight", p, l);
        T1(4 * D, "%s.%d.mlp.fc1.bias", p, l);
        T2(D, 4 * D, "%s.%d.mlp.fc2.weight", p, l);
        T1(D, "%s.%d.mlp.fc2.bias", p, l);
    }
    T1(D, "text_model.final_layer_norm.weight");
    T1(D, "text_model.final_layer_norm.bias");
#undef T1
#undef T2
}

/* ---- the real config files ---------------------------------------------- */

static const char UNET15[] =
    "{\n \"_class_name\": \"UNet2DConditionModel\",\n \"_diffusers_version\": \"0.6.0\",\n"
    " \"act_fn\": \"silu\",\n \"attention_head_dim\": 8,\n"
    " \"block_out_channels\": [320, 640, 1280, 1280],\n \"center_input_sample\": false,\n"
    " \"cross_attention_dim\": 768,\n"
    " \"down_block_types\": [\"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\", "
    "\"CrossAttnDownBlock2D\", \"DownBlock2D\"],\n"
    " \"downsample_padding\": 1,\n \"flip_sin_to_cos\": true,\n \"freq_shift\": 0,\n"
    " \"in_channels\": 4,\n \"layers_per_block\": 2,\n \"mid_block_scale_factor\": 1,\n"
    " \"norm_eps\": 1e-05,\n \"norm_num_groups\": 32,\n \"out_channels\": 4,\n"
    " \"sample_size\": 64,\n"
    " \"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\", "
    "\"CrossAttnUpBlock2D\"]\n}\n";

static const char UNET21[] =
    "{\n \"_class_name\": \"UNet2DConditionModel\",\n \"_diffusers_version\": \"0.10.0.dev0\",\n"
    " \"act_fn\": \"silu\",\n \"attention_head_dim\": [5, 10, 20, 20],\n"
    " \"block_out_channels\": [320, 640, 1280, 1280],\n \"center_input_sample\": false,\n"
    " \"cross_attention_dim\": 1024,\n"
    " \"down_block_types\": [\"CrossAttnDownBlock2D\", \"CrossAttnDownBlock2D\", "
    "\"CrossAttnDownBlock2D\", \"DownBlock2D\"],\n"
    " \"downsample_padding\": 1,\n \"dual_cross_attention\": false,\n"
    " \"flip_sin_to_cos\": true,\n \"freq_shift\": 0,\n \"in_channels\": 4,\n"
    " \"layers_per_block\": 2,\n \"mid_block_scale_factor\": 1,\n \"norm_eps\": 1e-05,\n"
    " \"norm_num_groups\": 32,\n \"num_class_embeds\": null,\n"
    " \"only_cross_attention\": false,\n \"out_channels\": 4,\n \"sample_size\": 96,\n"
    " \"up_block_types\": [\"UpBlock2D\", \"CrossAttnUpBlock2D\", \"CrossAttnUpBlock2D\", "
    "\"CrossAttnUpBlock2D\"],\n"
    " \"upcast_attention\": true,\n \"use_linear_projection\": true\n}\n";

static const char VAE_FMT[] =
    "{\n \"_class_name\": \"AutoencoderKL\",\n \"_diffusers_version\": \"0.6.0\",\n"
    " \"act_fn\": \"silu\",\n \"block_out_channels\": [128, 256, 512, 512],\n"
    " \"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\", "
    "\"DownEncoderBlock2D\", \"DownEncoderBlock2D\"],\n"
    " \"in_channels\": 3,\n \"latent_channels\": 4,\n \"layers_per_block\": 2,\n"
    " \"norm_num_groups\": 32,\n \"out_channels\": 3,\n \"sample_size\": %d,\n"
    " \"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\", \"UpDecoderBlock2D\", "
    "\"UpDecoderBlock2D\"]\n}\n";

static const char TEXT_FMT[] =
    "{\n \"architectures\": [\"CLIPTextModel\"],\n \"attention_dropout\": 0.0,\n"
    " \"bos_token_id\": 0,\n \"dropout\": 0.0,\n \"eos_token_id\": 2,\n"
    " \"hidden_act\": \"%s\",\n \"hidden_size\": %d,\n \"initializer_factor\": 1.0,\n"
    " \"initializer_range\": 0.02,\n \"intermediate_size\": %d,\n"
    " \"layer_norm_eps\": 1e-05,\n \"max_position_embeddings\": 77,\n"
    " \"model_type\": \"clip_text_model\",\n \"num_attention_heads\": %d,\n"
    " \"num_hidden_layers\": %d,\n \"pad_token_id\": 1,\n \"projection_dim\": %d,\n"
    " \"torch_dtype\": \"float16\",\n \"vocab_size\": 49408\n}\n";

static const char SCHED_FMT[] =
    "{\n \"_class_name\": \"%s\",\n \"_diffusers_version\": \"0.8.0\",\n"
    " \"beta_end\": 0.012,\n \"beta_schedule\": \"scaled_linear\",\n"
    " \"beta_start\": 0.00085,\n \"clip_sample\": false,\n \"num_train_timesteps\": 1000,\n"
    "%s \"set_alpha_to_one\": false,\n \"skip_prk_steps\": true,\n \"steps_offset\": 1,\n"
    " \"trained_betas\": null\n}\n";

static const char INDEX_FMT[] =
    "{\n \"_class_name\": \"StableDiffusionPipeline\",\n \"_diffusers_version\": \"0.8.0\",\n"
    " \"requires_safety_checker\": false,\n \"safety_checker\": [null, null],\n"
    " \"scheduler\": [\"diffusers\", \"%s\"],\n"
    " \"text_encoder\": [\"transformers\", \"CLIPTextModel\"],\n"
    " \"tokenizer\": [\"transformers\", \"CLIPTokenizer\"],\n"
    " \"unet\": [\"diffusers\", \"UNet2DConditionModel\"],\n"
    " \"vae\": [\"diffusers\", \"AutoencoderKL\"]\n}\n";

static const char SPECIAL_FMT[] =
    "{\n \"bos_token\": {\"content\": \"<|startoftext|>\", \"lstrip\": false, \"normalized\": "
    "true, \"rstrip\": false, \"single_word\": false},\n"
    " \"eos_token\": {\"content\": \"<|endoftext|>\", \"lstrip\": false, \"normalized\": true, "
    "\"rstrip\": false, \"single_word\": false},\n"
    " \"pad_token\": \"%s\",\n"
    " \"unk_token\": {\"content\": \"<|endoftext|>\", \"lstrip\": false, \"normalized\": true, "
    "\"rstrip\": false, \"single_word\": false}\n}\n";

static const char TOKCFG_FMT[] =
    "{\n \"add_prefix_space\": false,\n \"bos_token\": \"<|startoftext|>\",\n"
    " \"do_lower_case\": true,\n \"eos_token\": \"<|endoftext|>\",\n \"errors\": \"replace\",\n"
    " \"model_max_length\": 77,\n \"pad_token\": \"%s\",\n"
    " \"tokenizer_class\": \"CLIPTokenizer\",\n \"unk_token\": \"<|endoftext|>\"\n}\n";

/* The shipped CLIP vocabulary folder (data/clip). */
static bool find_vocab(char *out, size_t cap)
{
    char *v = sld_data_find("clip/vocab.json");
    if (!v)
        return false;
    *strrchr(v, '/') = 0;
    snprintf(out, cap, "%s", v);
    sld_free(v);
    return true;
}

static sld_status copy_file(const char *src, const char *dst, sld_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    sld_status st = sld_file_read(src, (size_t)64 << 20, &buf, &len, err);
    if (!st)
        st = sld_file_write_atomic(dst, buf, len, err);
    sld_free(buf);
    return st;
}

sld_status sld_make_random(const char *arch, const char *dir, uint64_t seed, sld_error *err)
{
    if (!arch || !dir)
        return sld_err(err, SLD_ERR_INVALID_ARG, "make-random: arch and folder are required");
    bool sd2;
    if (!strcmp(arch, "sd15"))
        sd2 = false;
    else if (!strcmp(arch, "sd21"))
        sd2 = true;
    else
        return sld_err(err, SLD_ERR_INVALID_ARG, "make-random: unknown arch '%s' (sd15|sd21)",
                       arch);
    char vocab[4200];
    if (!find_vocab(vocab, sizeof vocab))
        return sld_err(err, SLD_ERR_IO,
                       "make-random: the CLIP vocabulary (data/clip/vocab.json, merges.txt) "
                       "was not found; set SLD_DATA_DIR to the data folder of the sld tree");
    sld_status st;
    static const char *const subs[6] = {NULL, "unet", "vae", "text_encoder", "tokenizer",
                                        "scheduler"};
    for (int i = 0; i < 6; i++)
        if ((st = mkdir_p(dir, subs[i], err)))
            return st;

    char text[4096];
    const char *pad = sd2 ? "!" : "<|endoftext|>";
    const char *sched = sd2 ? "DDIMScheduler" : "PNDMScheduler";
    snprintf(text, sizeof text, INDEX_FMT, sched);
    if ((st = write_text(dir, "model_index.json", text, err)))
        return st;
    snprintf(text, sizeof text, SCHED_FMT, sched,
             sd2 ? " \"prediction_type\": \"v_prediction\",\n" : "");
    if ((st = write_text(dir, "scheduler/scheduler_config.json", text, err)))
        return st;
    snprintf(text, sizeof text, SPECIAL_FMT, pad);
    if ((st = write_text(dir, "tokenizer/special_tokens_map.json", text, err)))
        return st;
    snprintf(text, sizeof text, TOKCFG_FMT, pad);
    if ((st = write_text(dir, "tokenizer/tokenizer_config.json", text, err)))
        return st;
    static const char *const tokf[2] = {"vocab.json", "merges.txt"};
    for (int i = 0; i < 2; i++) {
        char src[4400], dst[4400];
        snprintf(src, sizeof src, "%s/%s", vocab, tokf[i]);
        snprintf(dst, sizeof dst, "%s/tokenizer/%s", dir, tokf[i]);
        if ((st = copy_file(src, dst, err)))
            return st;
    }
    const int D = sd2 ? 1024 : 768;
    snprintf(text, sizeof text, TEXT_FMT, sd2 ? "gelu" : "quick_gelu", D, 4 * D, sd2 ? 16 : 12,
             sd2 ? 23 : 12, sd2 ? 512 : 768);
    if ((st = write_text(dir, "text_encoder/config.json", text, err)))
        return st;
    const char *ucfg = sd2 ? UNET21 : UNET15;
    if ((st = write_text(dir, "unet/config.json", ucfg, err)))
        return st;
    snprintf(text, sizeof text, VAE_FMT, sd2 ? 768 : 512);
    if ((st = write_text(dir, "vae/config.json", text, err)))
        return st;

    /* Weights, one file at a time; tensor lists from the configs just written. */
    gen g = {.seed = seed * 0x9e3779b97f4a7c15ull + 1};
    clip_tensors(&g, D, sd2 ? 23 : 12);
    if ((st = gen_write(&g, dir, "text_encoder", "model.safetensors", err)))
        goto out;

    sld_json j;
    sld_unet_config uc;
    if ((st = sld_json_parse(&j, ucfg, "unet/config.json", err)))
        goto out;
    st = sld_unet_config_from_json(&uc, &j, err);
    sld_json_free(&j);
    if (st || (st = sld_unet_tensors(&uc, gen_add, &g, err)) ||
        (st = gen_write(&g, dir, "unet", "diffusion_pytorch_model.safetensors", err)))
        goto out;

    sld_vae_config vc;
    if ((st = sld_json_parse(&j, text, "vae/config.json", err)))
        goto out;
    st = sld_vae_config_from_json(&vc, &j, err);
    sld_json_free(&j);
    if (st || (st = sld_vae_tensors(&vc, gen_add, &g, err)) ||
        (st = gen_write(&g, dir, "vae", "diffusion_pytorch_model.safetensors", err)))
        goto out;
out:
    gen_clear(&g);
    sld_free(g.t);
    return st;
}
