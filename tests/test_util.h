/*
 * test_util.h — helpers shared by test programs: opening one component
 * folder of a fixture model (<model>/<part>/<weights> as a weight store,
 * <model>/<part>/config.json parsed) the way the loader does, so a network's
 * test can build it alone (test_unet.c, test_vae.c).
 */
#ifndef SLD_TEST_UTIL_H
#define SLD_TEST_UTIL_H

#include "io/json.h"
#include "io/safetensors.h"
#include "model/weights.h"
#include "test.h"

typedef struct {
    sld_st_file *f;
    sld_weights *w; /* named as the part ("unet", "vae") */
    sld_json cfg;   /* the part's config.json */
} t_component;

/* model: a folder under the fixtures ("models/tiny-sd1"). Returns 1 on
 * success; on failure prints the error, releases what it opened, returns 0. */
static inline int t_component_open(t_component *c, const char *model, const char *part,
                                   const char *weights)
{
    char dir[512], p[1200];
    sld_error err;
    memset(c, 0, sizeof *c);
    snprintf(dir, sizeof dir, "%s", fixture(model));
    snprintf(p, sizeof p, "%s/%s/%s", dir, part, weights);
    if (sld_st_open(&c->f, p, &err) || sld_weights_new(&c->w, part, &err) ||
        sld_weights_add_file(c->w, c->f, NULL, &err)) {
        printf("  %s\n", err.msg);
        sld_weights_free(c->w);
        sld_st_close(c->f);
        memset(c, 0, sizeof *c);
        return 0;
    }
    snprintf(p, sizeof p, "%s/%s/config.json", dir, part);
    if (sld_json_load(&c->cfg, p, &err)) {
        printf("  %s\n", err.msg);
        sld_weights_free(c->w);
        sld_st_close(c->f);
        memset(c, 0, sizeof *c);
        return 0;
    }
    return 1;
}

static inline void t_component_close(t_component *c)
{
    sld_json_free(&c->cfg);
    sld_weights_free(c->w);
    sld_st_close(c->f);
    memset(c, 0, sizeof *c);
}

#endif /* SLD_TEST_UTIL_H */
