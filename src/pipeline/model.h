/*
 * model.h — what an opened model holds (struct sld_model) and a run context
 * (struct sld_ctx). Filled by pipeline/load.c; read by txt2img, debug and the
 * evaluation code.
 */
#ifndef SLD_PIPELINE_MODEL_H
#define SLD_PIPELINE_MODEL_H

#include "io/json.h"
#include "io/safetensors.h"
#include "model/clip_text.h"
#include "model/tokenizer.h"
#include "model/unet.h"
#include "model/vae.h"
#include "model/weights.h"

#include <pthread.h>

#define SLD_MODEL_MAX_FILES 8

struct sld_safety_checker; /* model/safety_checker.h; optional */

struct sld_model {
    sld_arch arch;
    char *name;                 /* folder or file base name (for PNG metadata) */
    char *path;
    sld_model_opts opts;
    sld_st_file *files[SLD_MODEL_MAX_FILES]; /* mmaps backing the weight stores */
    int n_files;
    sld_weights *w_text, *w_unet, *w_vae;
    sld_tokenizer *tok;
    sld_clip_text *text;
    sld_unet *unet;
    sld_vae *vae;
    sld_json sched_cfg;         /* scheduler/scheduler_config.json, or a built-in default */
    sld_prediction prediction;  /* resolved: EPSILON or V */
    struct sld_safety_checker *safety; /* NULL when the model has none */
    int default_size;           /* pixels: 8 * unet sample_size */
    /* Content identity (sld_model_sha256), computed on first use. */
    pthread_mutex_t hash_lock;
    int hash_state;             /* 0 not yet, 1 done, -1 failed */
    char sha256[65];
    char short_hash[11];
    struct sld_model_file *file_hashes; /* per-file hashes seen so far (rel, sha256) */
    int n_file_hashes;
};

/* ---- model identity ------------------------------------------------------
 * The files that decide a model's images: for a diffusers folder the three
 * weight files actually opened plus text_encoder/, unet/, vae/ config.json,
 * scheduler/scheduler_config.json and the tokenizer files; for a single
 * checkpoint the file itself (plus the configs of opts.config_dir, if any).
 * The safety checker is not part of it (it never changes a generated image's
 * pixels, only blacks out flagged ones, and I2P runs never use it).
 * Identity: a lone file's SHA-256 (A1111's full-file hash, so its short form
 * is A1111's "Model hash"); several files: SHA-256 of the sha256sum-style
 * listing "<hex>  <rel>\n" sorted by rel. */
typedef struct sld_model_file {
    char *rel;        /* name relative to the model folder (a single file: its base name) */
    char *path;       /* path to read */
    char sha256[65];  /* "" until hashed */
} sld_model_file;

sld_status sld_model_files_list(const sld_model *m, sld_model_file **out, int *n,
                                sld_error *err);
void sld_model_files_free(sld_model_file *f, int n);
/* Hashes every file whose sha256 is still "". */
sld_status sld_model_files_hash(sld_model_file *f, int n, sld_error *err);
/* The model's memory of per-file hashes (one process never hashes a file of
 * an open model twice): fills f[i].sha256 where known / remembers f. */
void sld_model_files_recall(const sld_model *m, sld_model_file *f, int n);
void sld_model_files_remember(const sld_model *m, const sld_model_file *f, int n);
/* The identity of a hashed list (see above). */
void sld_model_identity_of(const sld_model_file *f, int n, char hex[65]);
/* Caches an identity already verified by the caller (the I2P runner checks
 * file stats against its manifest), so sld_model_sha256 does not rehash. */
void sld_model_identity_set(const sld_model *m, const char hex[65]);

/* What the model computes in: "bf16" or "fp32" (opts.precision resolved for
 * this CPU), and its fp32 3x3 convolutions: "winograd" or "direct" ("direct"
 * in bf16). For provenance (PNG metadata, run manifests). */
const char *sld_model_precision_name(const sld_model *m);
const char *sld_model_conv_algo_name(const sld_model *m);

struct sld_ctx {
    sld_model *m;
    int n_threads;
};

#endif /* SLD_PIPELINE_MODEL_H */
