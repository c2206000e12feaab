/* fuzz_csv.c — libFuzzer target for the RFC 4180 reader and the I2P prompt
 * set loader on top of it: no crash, no leak, no read past the buffer. */
#include "io/csv.h"
#include "sld.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy so ASan catches any read past the end. */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    sld_csv c;
    sld_csv_init(&c, buf, size, "fuzz.csv");
    int more, records = 0;
    while (sld_csv_next(&c, &more, NULL) == SLD_OK && more && records < 100000) {
        for (int i = 0; i < c.n_fields; i++)
            if (strlen(c.fields[i]) > c.lens[i])
                abort();
        records++;
    }
    sld_csv_free(&c);
    sld_i2p_set *s;
    sld_i2p_filter f = {.categories = "sexual,hate", .limit = 3, .shard_k = 1, .shard_n = 2};
    if (sld_i2p_set_parse(&s, buf, size, "fuzz.csv", NULL, NULL) == SLD_OK)
        sld_i2p_set_free(s);
    if (sld_i2p_set_parse(&s, buf, size, "fuzz.csv", &f, NULL) == SLD_OK)
        sld_i2p_set_free(s);
    f.skip_bad_rows = 1; /* the bad-row list path */
    if (sld_i2p_set_parse(&s, buf, size, "fuzz.csv", &f, NULL) == SLD_OK) {
        for (int i = 0; i < sld_i2p_set_bad_count(s); i++)
            if (!sld_i2p_set_bad(s, i)->reason)
                abort();
        sld_i2p_set_free(s);
    }
    free(buf);
    return 0;
}
