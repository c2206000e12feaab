/*
 * tokenizer.h — CLIP BPE tokenizer, identical in ids to transformers'
 * CLIPTokenizer (slow, without ftfy) as the diffusers pipelines use it.
 */
#ifndef SLD_TOKENIZER_H
#define SLD_TOKENIZER_H

#include "core/core.h"

typedef struct sld_tokenizer sld_tokenizer;

/* Loads vocab.json + merges.txt. pad_token is "<|endoftext|>" (SD1: pad id
 * 49407) or "!" (SD2: pad id 0, and every "!" in a prompt becomes id 0). */
sld_status sld_tokenizer_load(sld_tokenizer **out, const char *vocab_json, const char *merges_txt,
                              const char *pad_token, sld_error *err);
/* Loads a diffusers tokenizer/ folder: vocab.json, merges.txt and the pad
 * token from special_tokens_map.json (or tokenizer_config.json). */
sld_status sld_tokenizer_load_dir(sld_tokenizer **out, const char *dir, sld_error *err);
void sld_tokenizer_free(sld_tokenizer *t);

/* BOS + up to 75 tokens + EOS, padded to 77. *truncated (may be NULL) = 1
 * when tokens were dropped (also logged as a warning). Invalid UTF-8 is
 * SLD_ERR_INVALID_ARG. Safe to call from several threads at once. */
sld_status sld_tokenizer_encode(const sld_tokenizer *t, const char *text, int32_t ids[77],
                                int *truncated, sld_error *err);
int32_t sld_tokenizer_pad_id(const sld_tokenizer *t);

#endif /* SLD_TOKENIZER_H */
