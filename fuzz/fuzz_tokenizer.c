/* fuzz_tokenizer.c — libFuzzer target for the CLIP tokenizer: arbitrary bytes
 * as a prompt (NULs included), with the shipped vocabulary (data/clip, or
 * $SLD_DATA_DIR/clip), SD1 or SD2 padding chosen by the first byte.
 * Checks: invalid UTF-8 is rejected exactly when utf8proc rejects it; on
 * success the 77 ids are BOS, the first min(n, 75) tokens of the untruncated
 * tokenization, EOS, then padding, and every id is in the vocabulary. */
#include "model/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sld_tokenizer *tok[2];

static void load_once(void)
{
    if (tok[0])
        return;
    char dir[4096];
    const char *env = getenv("SLD_DATA_DIR");
    snprintf(dir, sizeof dir, "%s/clip", env && *env ? env : "data");
    char vocab[4200], merges[4200];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    sld_error err;
    if (sld_tokenizer_load(&tok[0], vocab, merges, "<|endoftext|>", &err) ||
        sld_tokenizer_load(&tok[1], vocab, merges, "!", &err)) {
        fprintf(stderr, "fuzz_tokenizer: %s (run from the repository root)\n", err.msg);
        abort();
    }
}

static int utf8_ok(const uint8_t *s, size_t n)
{
    while (n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate(s, (utf8proc_ssize_t)n, &cp);
        if (l <= 0)
            return 0;
        s += l;
        n -= (size_t)l;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load_once();
    const sld_tokenizer *t = tok[size && (data[0] & 1)];
    int32_t ids[77];
    int truncated = -1;
    sld_error err;
    sld_status st = sld_tokenizer_encode_len(t, (const char *)data, size, ids, &truncated, &err);
    if ((st == SLD_OK) != utf8_ok(data, size))
        __builtin_trap();
    if (st != SLD_OK) {
        if (st != SLD_ERR_INVALID_ARG || !strstr(err.msg, "byte offset"))
            __builtin_trap();
        return 0;
    }
    int32_t *all = NULL;
    size_t n = 0;
    if (sld_tokenizer_tokenize(t, (const char *)data, size, &all, &n, &err) != SLD_OK)
        __builtin_trap();
    size_t keep = n < 75 ? n : 75;
    if (ids[0] != sld_tokenizer_bos_id(t) || ids[1 + keep] != sld_tokenizer_eos_id(t) ||
        truncated != (n > 75) || (keep && memcmp(ids + 1, all, keep * sizeof *ids)))
        __builtin_trap();
    for (size_t i = keep + 2; i < 77; i++)
        if (ids[i] != sld_tokenizer_pad_id(t))
            __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if (!sld_tokenizer_token(t, all[i]))
            __builtin_trap();
    sld_free(all);
    return 0;
}
