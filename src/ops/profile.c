/* profile.c — per-op-class time and work of network forwards (profile.h). */
#include "ops/profile.h"

#include "core/core.h"

#include <stdio.h>

const char *const sld_prof_names[SLD_PROF_N] = {"conv3x3",   "conv3x3_wino", "conv1x1",
                                                "linear",    "attention",    "reorder",
                                                "norm",      "elementwise"};

void sld_prof_add(sld_prof *p, sld_prof_class c, double t0, double gflop)
{
    if (!p)
        return;
    p->seconds[c] += sld_time_now() - t0;
    p->gflop[c] += gflop;
}

int sld_prof_format(const sld_prof *p, char *buf, size_t cap)
{
    size_t o = 0;
    int n = snprintf(buf, cap, "total %.3f s", p->total);
    double rest = p->total;
    for (int i = 0; i < SLD_PROF_N && n >= 0; i++) {
        o = (size_t)n < cap ? (size_t)n : cap;
        rest -= p->seconds[i];
        if (p->seconds[i] <= 0.0)
            continue;
        int k;
        if (p->gflop[i] > 0.0)
            k = snprintf(buf + o, cap - o, ", %s %.3f s (%.0f GFLOP/s)", sld_prof_names[i],
                         p->seconds[i], p->gflop[i] / p->seconds[i]);
        else
            k = snprintf(buf + o, cap - o, ", %s %.3f s", sld_prof_names[i], p->seconds[i]);
        n = k < 0 ? k : n + k;
    }
    if (n < 0)
        return n;
    o = (size_t)n < cap ? (size_t)n : cap;
    int k = snprintf(buf + o, cap - o, ", other %.3f s", rest);
    return k < 0 ? k : n + k;
}
