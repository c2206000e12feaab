/* fuzz_config.c — libFuzzer target for the values in config files:
 * scheduler_config.json (then every sampler's timesteps and a few steps,
 * so a value that passes the range checks yet indexes a table out of bounds
 * is caught), and the UNet, VAE and CLIP text config.json readers. Input:
 * byte 0 picks the reader and byte 1 the step count; the rest is JSON. */
#include "io/json.h"
#include "model/clip_text.h"
#include "model/unet.h"
#include "model/vae.h"
#include "sample/sched.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run_sched(const sld_json *j, int steps)
{
    static const sld_sampler smp[] = {SLD_SAMPLER_DEFAULT, SLD_SAMPLER_PNDM,
                                      SLD_SAMPLER_DDIM,    SLD_SAMPLER_EULER,
                                      SLD_SAMPLER_EULER_A, SLD_SAMPLER_LMS,
                                      SLD_SAMPLER_DPMPP_2M};
    sld_error err;
    sld_rng *rng = NULL;
    if (sld_rng_new(&rng, 1, SLD_RNG_DEFAULT, &err))
        return;
    for (size_t k = 0; k < sizeof smp / sizeof smp[0]; k++) {
        sld_sched *s = NULL;
        if (sld_sched_new(&s, j, smp[k], NULL, &err) == SLD_OK &&
            sld_sched_set_timesteps(s, steps, &err) == SLD_OK) {
            float x[4] = {0.5f, -1, 2, 0}, eps[4] = {0.1f, 0.2f, -0.3f, 0};
            int n = sld_sched_n_iters(s);
            for (int i = 0; i < n && i < 8; i++) {
                float in[4];
                sld_sched_scale_input(s, i, x, in, 4);
                (void)sld_sched_timestep(s, i);
                if (sld_sched_step(s, i, eps, x, 4, rng, NULL, &err))
                    break;
            }
        }
        sld_sched_free(s);
    }
    sld_rng_free(rng);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 1 << 16)
        return 0;
    char *text = malloc(size - 1);
    if (!text)
        return 0;
    memcpy(text, data + 2, size - 2);
    text[size - 2] = 0;
    sld_json j;
    sld_error err;
    if (sld_json_parse(&j, text, "fuzz.json", &err) == SLD_OK) {
        switch (data[0] % 4) {
        case 0:
            run_sched(&j, 1 + data[1] % 64);
            break;
        case 1: {
            sld_unet_config c;
            (void)sld_unet_config_from_json(&c, &j, &err);
            break;
        }
        case 2: {
            sld_vae_config c;
            (void)sld_vae_config_from_json(&c, &j, &err);
            break;
        }
        default: {
            sld_clip_text_config c;
            (void)sld_clip_text_config_from_json(&c, &j, &err);
            break;
        }
        }
        sld_json_free(&j);
    }
    free(text);
    return 0;
}
