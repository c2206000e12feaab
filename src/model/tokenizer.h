/*
 * tokenizer.h — CLIP BPE tokenizer, identical in ids to transformers'
 * CLIPTokenizer (slow, without ftfy) as the diffusers pipelines use it.
 */
#ifndef SLD_TOKENIZER_H
#define SLD_TOKENIZER_H

#include "core/core.h"

typedef struct sld_tokenizer sld_tokenizer;

/* Loads vocab.json + merges.txt. pad_token is "<|endoftext|>" (SD1: pad id
 * 49407; NULL means this) or "!" (SD2: pad id 0, and every "!" in a prompt
 * becomes id 0); it must be in the vocabulary. Errors: SLD_ERR_IO (missing
 * file), SLD_ERR_FORMAT (bad JSON, non-integer id, malformed merges line,
 * no <|startoftext|>/<|endoftext|>), each naming the file (and line). Free
 * with sld_tokenizer_free. */
sld_status sld_tokenizer_load(sld_tokenizer **out, const char *vocab_json, const char *merges_txt,
                              const char *pad_token, sld_error *err);
/* Loads a diffusers tokenizer/ folder: vocab.json, merges.txt and the pad
 * token from special_tokens_map.json, else tokenizer_config.json (a string
 * or {"content": ...}), else "<|endoftext|>". */
sld_status sld_tokenizer_load_dir(sld_tokenizer **out, const char *dir, sld_error *err);
void sld_tokenizer_free(sld_tokenizer *t);

/* BOS + up to 75 tokens + EOS, padded to 77. *truncated (may be NULL) = 1
 * when tokens were dropped (also logged as a warning). Invalid UTF-8 is
 * SLD_ERR_INVALID_ARG. Safe to call from several threads at once. */
sld_status sld_tokenizer_encode(const sld_tokenizer *t, const char *text, int32_t ids[77],
                                int *truncated, sld_error *err);
int32_t sld_tokenizer_pad_id(const sld_tokenizer *t);
int32_t sld_tokenizer_bos_id(const sld_tokenizer *t);
int32_t sld_tokenizer_eos_id(const sld_tokenizer *t);
/* One more than the largest id the tokenizer can produce (vocab.json's
 * largest id, BOS/EOS/pad included). */
int32_t sld_tokenizer_n_ids(const sld_tokenizer *t);

/* sld_tokenizer_encode on text[0..len), which may hold NUL bytes (dropped,
 * like U+0000 in the Python cleaning). */
sld_status sld_tokenizer_encode_len(const sld_tokenizer *t, const char *text, size_t len,
                                    int32_t ids[77], int *truncated, sld_error *err);
/* Every token of text[0..len), without BOS/EOS, padding or truncation (the
 * middle of transformers' untruncated input_ids). *out (sld_malloc) belongs
 * to the caller; *n may be 0. Errors as sld_tokenizer_encode. */
sld_status sld_tokenizer_tokenize(const sld_tokenizer *t, const char *text, size_t len,
                                  int32_t **out, size_t *n, sld_error *err);
/* The vocabulary string of id in byte-level form ("cat</w>", "!"), valid
 * while t lives; NULL for an id not in vocab.json. */
const char *sld_tokenizer_token(const sld_tokenizer *t, int32_t id);

#endif /* SLD_TOKENIZER_H */
