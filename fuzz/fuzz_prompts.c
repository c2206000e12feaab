/* fuzz_prompts.c — libFuzzer target for the prompt-set loader in all its
 * formats (I2P CSV, COCO captions, JSONL; by name and by content sniffing).
 * The first byte picks the file name (its extension decides the format) and
 * the sample seed; the rest is the file. Checks: no crash, no leak; every
 * row has a prompt of valid UTF-8 (JSON formats); COCO rows name distinct
 * images; the two shards of a set partition its rows. */
#include "sld.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

long sld_utf8_invalid_at(const char *s, size_t n); /* core.h */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const names[] = {"fuzz.csv", "fuzz.json", "fuzz.jsonl", "fuzz"};
    const char *name = names[data[0] & 3];
    uint32_t seed = data[0] >> 2;
    data++;
    size--;
    char *buf = malloc(size ? size : 1); /* exact size: ASan sees overreads */
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    sld_i2p_filter f = {.sample_seed = seed, .limit = (int)(seed & 3)};
    sld_i2p_set *all = NULL, *sh[2] = {NULL, NULL};
    if (sld_i2p_set_parse(&all, buf, size, name, &f, NULL) == SLD_OK) {
        int n = sld_i2p_set_count(all);
        int coco = !strcmp(sld_i2p_set_format(all), "coco-captions");
        int json = coco || !strcmp(sld_i2p_set_format(all), "jsonl");
        if (f.limit && n > f.limit)
            abort();
        for (int i = 0; i < n; i++) {
            const sld_i2p_prompt *p = sld_i2p_set_get(all, i);
            if (!p->prompt || (json && sld_utf8_invalid_at(p->prompt, strlen(p->prompt)) >= 0))
                abort();
            if (coco && (p->row != i || p->image_id < 0 || !p->has_seed))
                abort();
            for (int j = 0; coco && j < i && j < 64; j++)
                if (sld_i2p_set_get(all, j)->image_id == p->image_id)
                    abort();
        }
        int got = 0;
        for (int k = 0; k < 2; k++) {
            sld_i2p_filter fk = f;
            fk.shard_k = k;
            fk.shard_n = 2;
            if (sld_i2p_set_parse(&sh[k], buf, size, name, &fk, NULL) != SLD_OK)
                abort(); /* the same file must load in shards */
            for (int i = 0; i < sld_i2p_set_count(sh[k]); i++)
                if (sld_i2p_set_get(sh[k], i)->row % 2 != k)
                    abort();
            got += sld_i2p_set_count(sh[k]);
        }
        if (got != n)
            abort();
    }
    f.skip_bad_rows = 1;
    sld_i2p_set *sk = NULL;
    if (sld_i2p_set_parse(&sk, buf, size, name, &f, NULL) == SLD_OK)
        for (int i = 0; i < sld_i2p_set_bad_count(sk); i++)
            if (!sld_i2p_set_bad(sk, i)->reason)
                abort();
    sld_i2p_set_free(sk);
    sld_i2p_set_free(sh[0]);
    sld_i2p_set_free(sh[1]);
    sld_i2p_set_free(all);
    free(buf);
    return 0;
}
