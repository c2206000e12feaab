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
};

struct sld_ctx {
    sld_model *m;
    int n_threads;
};

#endif /* SLD_PIPELINE_MODEL_H */
