/*
 * load.c — model discovery and loading (sld_model_open), run contexts, and
 * the public text path (sld_tokenize, sld_encode).
 *
 * Two layouts:
 *   - a diffusers folder: model_index.json, tokenizer/, text_encoder/, unet/,
 *     vae/ (each with config.json and weights), scheduler/;
 *   - a single-file LDM checkpoint (.safetensors): architecture from tensor
 *     names (model/ckpt_map.c renames everything to diffusers names), configs
 *     inferred from shapes or taken from opts.config_dir, the standard CLIP
 *     vocabulary from data/clip, and a built-in scheduler config.
 * Invariants: after open the model is immutable; every weight store is
 * backed by an mmap in m->files that lives as long as the model; networks
 * bind by diffusers name and fail on missing or wrong-shaped tensors.
 */
#include "core/core.h"
#include "model/ckpt_map.h"
#include "pipeline/model.h"
#include "model/safety_checker.h"
#include "ops/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* SD 1.5's scheduler_config.json and SD 2.x's (DDIM), for single files. */
static const char SCHED_SD1[] =
    "{\"_class_name\":\"PNDMScheduler\",\"beta_end\":0.012,\"beta_schedule\":\"scaled_linear\","
    "\"beta_start\":0.00085,\"num_train_timesteps\":1000,\"set_alpha_to_one\":false,"
    "\"skip_prk_steps\":true,\"steps_offset\":1,\"trained_betas\":null,\"clip_sample\":false}";
static const char SCHED_SD2[] =
    "{\"_class_name\":\"DDIMScheduler\",\"beta_end\":0.012,\"beta_schedule\":\"scaled_linear\","
    "\"beta_start\":0.00085,\"clip_sample\":false,\"num_train_timesteps\":1000,"
    "\"prediction_type\":\"epsilon\",\"set_alpha_to_one\":false,\"skip_prk_steps\":true,"
    "\"steps_offset\":1,\"trained_betas\":null}";

void sld_model_opts_default(sld_model_opts *o)
{
    memset(o, 0, sizeof *o);
    o->precision = SLD_PREC_FP32;
    o->prediction = SLD_PRED_DEFAULT;
    o->config_dir = NULL;
}

/* ---- helpers ----------------------------------------------------------------- */

static sld_status nomem(sld_error *err) { return sld_err(err, SLD_ERR_NOMEM, "out of memory"); }

/* path/rel into a new string. */
static char *join(const char *a, const char *b) { return sld_path_join(a, b); }

static sld_status open_st(sld_model *m, const char *path, sld_st_file **out, sld_error *err)
{
    if (m->n_files == SLD_MODEL_MAX_FILES)
        return sld_err(err, SLD_ERR_INTERNAL, "too many weight files");
    sld_status st = sld_st_open(out, path, err);
    if (st)
        return st;
    m->files[m->n_files++] = *out;
    return SLD_OK;
}

static sld_status load_json(const char *dir, const char *rel, sld_json *j, sld_error *err)
{
    char *p = join(dir, rel);
    if (!p)
        return nomem(err);
    sld_status st;
    if (!sld_path_exists(p))
        st = sld_err(err, SLD_ERR_IO, "%s: missing (expected in a diffusers folder)", p);
    else
        st = sld_json_load(j, p, err);
    sld_free(p);
    return st;
}

/* Logs how many tensors of a store no network used (a normal thing for
 * single files: EMA copies, schedule buffers, OpenCLIP's extra block). */
static void log_unused(const sld_weights *w)
{
    int n = sld_weights_count(w), used = sld_weights_used_count(w);
    if (n != used) {
        bool u;
        const char *first = NULL;
        for (int i = 0; i < n && !first; i++) {
            const char *name = sld_weights_name(w, i, &u);
            if (!u)
                first = name;
        }
        sld_log(SLD_LOG_INFO, "%s: %d of %d tensors unused (first: '%s')",
                sld_weights_label(w), n - used, n, first ? first : "");
    }
}

static sld_status text_build(sld_model *m, const sld_clip_text_config *c, sld_error *err)
{
    return sld_clip_text_load(&m->text, c, m->w_text, err);
}

static sld_status unet_build_json(sld_model *m, const char *cfg_dir, sld_error *err)
{
    sld_json j;
    sld_unet_config c;
    sld_status st = load_json(cfg_dir, "unet/config.json", &j, err);
    if (st)
        return st;
    st = sld_unet_config_from_json(&c, &j, err);
    sld_json_free(&j);
    c.precision = (int)m->opts.precision;
    c.conv_algo = (int)m->opts.conv_algo;
    return st ? st : sld_unet_load(&m->unet, &c, m->w_unet, err);
}

static sld_status vae_build_json(sld_model *m, const char *cfg_dir, sld_error *err)
{
    sld_json j;
    sld_vae_config c;
    sld_status st = load_json(cfg_dir, "vae/config.json", &j, err);
    if (st)
        return st;
    st = sld_vae_config_from_json(&c, &j, err);
    sld_json_free(&j);
    c.precision = (int)m->opts.precision;
    c.conv_algo = (int)m->opts.conv_algo;
    return st ? st : sld_vae_load(&m->vae, &c, m->w_vae, err);
}

static sld_status text_build_json(sld_model *m, const char *cfg_dir, sld_error *err)
{
    sld_json j;
    sld_clip_text_config c;
    sld_status st = load_json(cfg_dir, "text_encoder/config.json", &j, err);
    if (st)
        return st;
    st = sld_clip_text_config_from_json(&c, &j, err);
    sld_json_free(&j);
    return st ? st : text_build(m, &c, err);
}

/* Opens dir/sub/<the first of names present> (safetensors preferred over
 * PyTorch .bin files) into a new store. */
static sld_status folder_weights(sld_model *m, const char *dir, const char *sub,
                                 const char *const *names, sld_weights **w, sld_error *err)
{
    char *d = join(dir, sub);
    char *p = d ? sld_st_pick(d, names) : NULL;
    sld_free(d);
    if (!p)
        return nomem(err);
    sld_status st;
    sld_st_file *f;
    if (!sld_path_exists(p))
        st = sld_err(err, SLD_ERR_IO, "%s: missing (expected in a diffusers folder; %s or %s)", p,
                     names[0], names[1]);
    else {
        char label[300];
        snprintf(label, sizeof label, "%s/%s", sub, strrchr(p, '/') + 1);
        if (!(st = open_st(m, p, &f, err)) && !(st = sld_weights_new(w, label, err)))
            st = sld_weights_add_file(*w, f, NULL, err);
    }
    sld_free(p);
    return st;
}

static sld_status resolve_prediction(sld_model *m, sld_error *err)
{
    if (m->opts.prediction == SLD_PRED_EPSILON || m->opts.prediction == SLD_PRED_V) {
        m->prediction = m->opts.prediction;
        return SLD_OK;
    }
    const char *pt;
    sld_status st = sld_json_str_opt(&m->sched_cfg, NULL, "prediction_type", "epsilon", &pt, err);
    if (st)
        return st;
    if (!strcmp(pt, "epsilon"))
        m->prediction = SLD_PRED_EPSILON;
    else if (!strcmp(pt, "v_prediction"))
        m->prediction = SLD_PRED_V;
    else
        return sld_err(err, SLD_ERR_UNSUPPORTED,
                       "%s: prediction_type \"%s\" is not supported (epsilon or v_prediction)",
                       m->sched_cfg.path, pt);
    return SLD_OK;
}

/* ---- diffusers folder ---------------------------------------------------------- */

static sld_status open_folder(sld_model *m, const char *dir, sld_error *err)
{
    sld_status st;
    sld_json idx;
    char *p = join(dir, "model_index.json");
    if (!p)
        return nomem(err);
    if (!sld_path_exists(p)) {
        st = sld_err(err, SLD_ERR_IO,
                     "%s: not a diffusers folder (model_index.json is missing)", dir);
        sld_free(p);
        return st;
    }
    st = sld_json_load(&idx, p, err);
    sld_free(p);
    if (st)
        return st;
    sld_json_free(&idx);

    if (!(p = join(dir, "tokenizer")))
        return nomem(err);
    st = sld_path_is_dir(p) ? sld_tokenizer_load_dir(&m->tok, p, err)
                            : sld_err(err, SLD_ERR_IO, "%s: missing tokenizer folder", p);
    sld_free(p);
    if (st)
        return st;

    if ((st = folder_weights(m, dir, "text_encoder", sld_st_names_transformers, &m->w_text,
                             err)) ||
        (st = text_build_json(m, dir, err)))
        return st;
    if ((st = folder_weights(m, dir, "unet", sld_st_names_diffusers, &m->w_unet, err)) ||
        (st = unet_build_json(m, dir, err)))
        return st;
    if ((st = folder_weights(m, dir, "vae", sld_st_names_diffusers, &m->w_vae, err)) ||
        (st = vae_build_json(m, dir, err)))
        return st;
    if ((st = load_json(dir, "scheduler/scheduler_config.json", &m->sched_cfg, err)))
        return st;

    /* SD2 = OpenCLIP text tower (exact GELU), "!" padding, or 1024-wide
     * cross-attention; anything else is SD1. */
    const sld_clip_text_config *tc = sld_clip_text_cfg(m->text);
    bool sd2 = tc->gelu_erf || sld_tokenizer_pad_id(m->tok) == 0 ||
               sld_unet_cfg(m->unet)->cross_attention_dim == 1024;
    m->arch = sd2 ? SLD_ARCH_SD2 : SLD_ARCH_SD1;
    return SLD_OK;
}

/* ---- single file ------------------------------------------------------------- */

/* The shipped CLIP vocabulary folder (data/clip), or NULL. */
static char *find_clip_data(void)
{
    char *v = sld_data_find("clip/vocab.json");
    if (v)
        *strrchr(v, '/') = 0; /* the folder */
    return v;
}

static sld_status single_tokenizer(sld_model *m, sld_error *err)
{
    sld_status st;
    if (m->opts.config_dir) {
        char *p = join(m->opts.config_dir, "tokenizer");
        if (!p)
            return nomem(err);
        if (sld_path_is_dir(p)) {
            st = sld_tokenizer_load_dir(&m->tok, p, err);
            sld_free(p);
            return st;
        }
        sld_free(p);
    }
    char *d = find_clip_data();
    if (!d)
        return sld_err(err, SLD_ERR_IO,
                       "the CLIP vocabulary (data/clip/vocab.json, merges.txt) was not found; "
                       "set SLD_DATA_DIR to the data folder of the sld source tree");
    char *v = join(d, "vocab.json"), *mg = join(d, "merges.txt");
    if (!v || !mg)
        st = nomem(err);
    else
        st = sld_tokenizer_load(&m->tok, v, mg, m->arch == SLD_ARCH_SD2 ? "!" : "<|endoftext|>",
                                err);
    sld_free(v);
    sld_free(mg);
    sld_free(d);
    return st;
}

static bool has_prefix_tensor(const sld_st_file *f, const char *pfx)
{
    size_t n = strlen(pfx);
    for (int i = 0; i < sld_st_count(f); i++)
        if (!strncmp(sld_st_at(f, i)->name, pfx, n))
            return true;
    return false;
}

static sld_status open_single(sld_model *m, const char *path, sld_error *err)
{
    sld_st_file *f;
    sld_status st = open_st(m, path, &f, err);
    if (st)
        return st;
    int arch = sld_ckpt_detect(f);
    if (!arch || !has_prefix_tensor(f, "model.diffusion_model.") ||
        !has_prefix_tensor(f, "first_stage_model."))
        return sld_err(err, SLD_ERR_UNSUPPORTED,
                       "%s: unknown architecture: expected an SD 1.x/2.x checkpoint with "
                       "'cond_stage_model.transformer.*' or 'cond_stage_model.model.*', "
                       "'model.diffusion_model.*' and 'first_stage_model.*' tensors",
                       path);
    m->arch = (sld_arch)arch;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    /* EMA copies (model_ema.<name without dots>) sit beside the trained
     * weights in full .ckpt files; like A1111 (use_ema: False in its
     * v1-inference.yaml) and diffusers (extract_ema=False) we bind the
     * model.diffusion_model.* weights and say so. */
    int n_ema = 0;
    for (int i = 0; i < sld_st_count(f); i++)
        n_ema += !strncmp(sld_st_at(f, i)->name, "model_ema.", 10);
    if (n_ema > 2)
        sld_log(SLD_LOG_INFO,
                "%s: holds EMA weights (%d model_ema.* tensors); using the non-EMA "
                "model.diffusion_model.* weights, as A1111 and diffusers do by default",
                base, n_ema);
    if (*sld_st_root(f))
        sld_log(SLD_LOG_INFO, "%s: %s checkpoint, tensors taken from '%s'", base,
                sld_st_format(f), sld_st_root(f));
    char label[300];
    const char *cfg = m->opts.config_dir;
    if (cfg && !sld_path_is_dir(cfg))
        return sld_err(err, SLD_ERR_IO, "%s: config folder not found", cfg);

    int n_blocks = 0;
    snprintf(label, sizeof label, "%s (text encoder)", base);
    if ((st = sld_weights_new(&m->w_text, label, err)) ||
        (st = sld_ckpt_map_text(m->w_text, f, arch, &n_blocks, err)))
        return st;
    if (cfg) {
        st = text_build_json(m, cfg, err);
    } else {
        sld_clip_text_config tc;
        st = sld_ckpt_text_config_infer(&tc, m->w_text, arch, n_blocks, err);
        if (!st)
            st = text_build(m, &tc, err);
    }
    if (st)
        return st;

    snprintf(label, sizeof label, "%s (unet)", base);
    if ((st = sld_weights_new(&m->w_unet, label, err)) ||
        (st = sld_ckpt_map_unet(m->w_unet, f, err)))
        return st;
    if (cfg) {
        st = unet_build_json(m, cfg, err);
    } else {
        sld_unet_config uc;
        st = sld_unet_config_infer(&uc, m->w_unet, arch, err);
        uc.precision = (int)m->opts.precision;
        uc.conv_algo = (int)m->opts.conv_algo;
        if (!st)
            st = sld_unet_load(&m->unet, &uc, m->w_unet, err);
    }
    if (st)
        return st;

    snprintf(label, sizeof label, "%s (vae)", base);
    if ((st = sld_weights_new(&m->w_vae, label, err)) ||
        (st = sld_ckpt_map_vae(m->w_vae, f, err)))
        return st;
    if (cfg) {
        st = vae_build_json(m, cfg, err);
    } else {
        sld_vae_config vc;
        st = sld_vae_config_infer(&vc, m->w_vae, err);
        vc.precision = (int)m->opts.precision;
        vc.conv_algo = (int)m->opts.conv_algo;
        if (!st)
            st = sld_vae_load(&m->vae, &vc, m->w_vae, err);
    }
    if (st)
        return st;

    if ((st = single_tokenizer(m, err)))
        return st;
    if (cfg)
        return load_json(cfg, "scheduler/scheduler_config.json", &m->sched_cfg, err);
    return sld_json_parse(&m->sched_cfg, arch == SLD_ARCH_SD2 ? SCHED_SD2 : SCHED_SD1,
                          arch == SLD_ARCH_SD2 ? "built-in SD 2.x scheduler config"
                                               : "built-in SD 1.5 scheduler config",
                          err);
}

/* diffusers loads the checker when model_index.json names one and the folder
 * has safety_checker/; "safety_checker": [null, null] (SD 2.x) means none. */
static sld_status open_safety_checker(sld_model *m, const char *path, sld_error *err)
{
    if (m->opts.no_safety_checker || !sld_path_is_dir(path))
        return SLD_OK;
    char *idx = sld_path_join(path, "model_index.json");
    char *sc = sld_path_join(path, "safety_checker/config.json");
    sld_status st = SLD_OK;
    if (!idx || !sc) {
        st = nomem(err);
        goto done;
    }
    if (!sld_path_exists(sc))
        goto done;
    sld_json j = {0};
    if (sld_path_exists(idx) && sld_json_load(&j, idx, NULL) == SLD_OK) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j.root, "safety_checker");
        int none = cJSON_IsNull(e) ||
                   (cJSON_IsArray(e) && cJSON_IsNull(cJSON_GetArrayItem(e, 0)));
        sld_json_free(&j);
        if (none)
            goto done;
    }
    st = sld_safety_checker_open(&m->safety, path, err);
done:
    sld_free(idx);
    sld_free(sc);
    return st;
}

/* ---- cross-component contracts --------------------------------------------------
 * Each part of a folder is checked against its own weights when it loads;
 * these checks are between parts (a text encoder from one model inside
 * another overflowed the UNet's cross-attention). Kept apart from discovery
 * so other formats can call them too. Labels name where each value came
 * from: a component's config.json, or the single file. */

static void part_label(const sld_model *m, const char *part, char *out, size_t n)
{
    const char *cfg = m->opts.config_dir;
    if (cfg || sld_path_is_dir(m->path))
        snprintf(out, n, "%s/%s/config.json", cfg ? cfg : m->path, part);
    else
        snprintf(out, n, "%s (%s)", m->path, part);
}

static sld_status check_contracts(const sld_model *m, sld_error *err)
{
    const sld_clip_text_config *tc = sld_clip_text_cfg(m->text);
    const sld_unet_config *uc = sld_unet_cfg(m->unet);
    const sld_vae_config *vc = sld_vae_cfg(m->vae);
    char lt[1100], lu[1100], lv[1100];
    part_label(m, "text_encoder", lt, sizeof lt);
    part_label(m, "unet", lu, sizeof lu);
    part_label(m, "vae", lv, sizeof lv);
    if (tc->hidden != uc->cross_attention_dim)
        return sld_err(err, SLD_ERR_CONFIG,
                       "parts do not fit: %s has hidden_size %d but %s has cross_attention_dim "
                       "%d; the text encoder and the UNet must come from the same model",
                       lt, tc->hidden, lu, uc->cross_attention_dim);
    if (uc->in_channels != 4 || uc->out_channels != 4)
        return sld_err(err, SLD_ERR_UNSUPPORTED,
                       "%s: in_channels %d, out_channels %d; only 4-channel latents (SD 1.x/2.x "
                       "text-to-image) are supported",
                       lu, uc->in_channels, uc->out_channels);
    if (vc->latent_channels != uc->in_channels)
        return sld_err(err, SLD_ERR_CONFIG,
                       "parts do not fit: %s has latent_channels %d but %s has in_channels %d; "
                       "the VAE and the UNet must share a latent space",
                       lv, vc->latent_channels, lu, uc->in_channels);
    if (vc->out_channels != 3 || vc->in_channels != 3)
        return sld_err(err, SLD_ERR_UNSUPPORTED,
                       "%s: in_channels %d, out_channels %d; the VAE must map RGB (3 channels)",
                       lv, vc->in_channels, vc->out_channels);
    if (!(vc->scaling_factor > 1e-6f && vc->scaling_factor < 1e6f))
        return sld_err(err, SLD_ERR_CONFIG,
                       "%s: scaling_factor %g is not a positive finite number (SD uses 0.18215)",
                       lv, (double)vc->scaling_factor);
    int32_t n_ids = sld_tokenizer_n_ids(m->tok);
    if (n_ids > tc->vocab_size) {
        char ltok[1100];
        if (m->opts.config_dir || sld_path_is_dir(m->path))
            snprintf(ltok, sizeof ltok, "%s/tokenizer/vocab.json",
                     m->opts.config_dir ? m->opts.config_dir : m->path);
        else
            snprintf(ltok, sizeof ltok, "the CLIP vocabulary (data/clip/vocab.json)");
        return sld_err(err, SLD_ERR_CONFIG,
                       "parts do not fit: %s has ids up to %d but %s has vocab_size %d "
                       "embedding rows; the tokenizer and the text encoder must match",
                       ltok, (int)n_ids - 1, lt, tc->vocab_size);
    }
    return SLD_OK;
}

/* ---- public API ---------------------------------------------------------------- */

static char *model_name(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    size_t s = n;
    while (s > 0 && path[s - 1] != '/')
        s--;
    size_t len = n - s;
    static const char *const exts[] = {".safetensors", ".ckpt", ".pth", ".pt", ".bin"};
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t el = strlen(exts[i]);
        if (len > el && !strncmp(path + n - el, exts[i], el)) {
            len -= el;
            break;
        }
    }
    char *r = sld_malloc(len + 1);
    if (r) {
        memcpy(r, path + s, len);
        r[len] = 0;
    }
    return r;
}

sld_status sld_model_open(sld_model **out, const char *path, const sld_model_opts *o,
                          sld_error *err)
{
    if (!out || !path || !*path)
        return sld_err(err, SLD_ERR_INVALID_ARG, "sld_model_open: no model path given");
    *out = NULL;
    sld_model *m = sld_calloc(1, sizeof *m);
    if (!m)
        return nomem(err);
    pthread_mutex_init(&m->hash_lock, NULL);
    if (o)
        m->opts = *o;
    else
        sld_model_opts_default(&m->opts);
    sld_status st;
    char *cfg = NULL;
    if (!(m->path = sld_strdup(path)) || !(m->name = model_name(path)) ||
        (m->opts.config_dir && !(cfg = sld_strdup(m->opts.config_dir)))) {
        st = nomem(err);
        goto fail;
    }
    m->opts.config_dir = cfg; /* owned copy; freed on close */
    double t0 = sld_time_now();
    if (sld_path_is_dir(path))
        st = open_folder(m, path, err);
    else if (sld_path_exists(path))
        st = open_single(m, path, err);
    else
        st = sld_err(err, SLD_ERR_IO, "%s: no such file or folder", path);
    if (!st)
        st = resolve_prediction(m, err);
    if (!st)
        st = check_contracts(m, err);
    if (st)
        goto fail;
    m->default_size = 8 * sld_unet_cfg(m->unet)->sample_size;
    if ((st = open_safety_checker(m, path, err)))
        goto fail;
    sld_weights *ws[3] = {m->w_text, m->w_unet, m->w_vae};
    for (int i = 0; i < 3; i++)
        log_unused(ws[i]);
    sld_log(SLD_LOG_INFO, "%s: SD %s model, %s prediction, loaded in %.2f s", m->name,
            m->arch == SLD_ARCH_SD2 ? "2.x" : "1.x",
            m->prediction == SLD_PRED_V ? "v" : "epsilon", sld_time_now() - t0);
    *out = m;
    return SLD_OK;
fail:
    sld_model_close(m);
    return st;
}

void sld_model_close(sld_model *m)
{
    if (!m)
        return;
    sld_safety_checker_free(m->safety);
    sld_clip_text_free(m->text);
    sld_unet_free(m->unet);
    sld_vae_free(m->vae);
    sld_tokenizer_free(m->tok);
    sld_weights_free(m->w_text);
    sld_weights_free(m->w_unet);
    sld_weights_free(m->w_vae);
    for (int i = 0; i < m->n_files; i++)
        sld_st_close(m->files[i]);
    sld_json_free(&m->sched_cfg);
    sld_free((char *)m->opts.config_dir);
    sld_free(m->name);
    sld_free(m->path);
    sld_model_files_free(m->file_hashes, m->n_file_hashes);
    pthread_mutex_destroy(&m->hash_lock);
    sld_free(m);
    /* cached oneDNN weight copies are keyed by pointers that die here */
    sld_ops_cache_clear();
}

sld_arch sld_model_arch(const sld_model *m) { return m->arch; }
int sld_model_text_dim(const sld_model *m) { return sld_clip_text_cfg(m->text)->hidden; }
const char *sld_model_name(const sld_model *m) { return m->name; }

sld_status sld_ctx_new(sld_ctx **out, sld_model *m, int n_threads, sld_error *err)
{
    if (!out || !m)
        return sld_err(err, SLD_ERR_INVALID_ARG, "sld_ctx_new: no model");
    if (n_threads < 0)
        return sld_err(err, SLD_ERR_INVALID_ARG, "sld_ctx_new: thread count %d < 0", n_threads);
    sld_ctx *c = sld_calloc(1, sizeof *c);
    if (!c)
        return nomem(err);
    c->m = m;
    c->n_threads = sld_threads_clamp(n_threads);
    *out = c;
    return SLD_OK;
}

void sld_ctx_free(sld_ctx *c) { sld_free(c); }

sld_status sld_tokenize(const sld_model *m, const char *text, int32_t ids[SLD_N_CTX],
                        int *truncated, sld_error *err)
{
    if (!m || !text || !ids)
        return sld_err(err, SLD_ERR_INVALID_ARG, "sld_tokenize: missing argument");
    return sld_tokenizer_encode(m->tok, text, ids, truncated, err);
}

sld_status sld_encode(sld_ctx *c, const char *text, float *out, sld_error *err)
{
    if (!c || !text || !out)
        return sld_err(err, SLD_ERR_INVALID_ARG, "sld_encode: missing argument");
    int32_t ids[SLD_N_CTX];
    sld_status st = sld_tokenize(c->m, text, ids, NULL, err);
    if (st)
        return st;
    sld_threads_set(c->n_threads);
    return sld_clip_text_forward(c->m->text, ids, 1, out, err);
}
