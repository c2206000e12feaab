/* arena.c — a bump allocator over one aligned block. */
#include "core/core.h"

sld_status sld_arena_init(sld_arena *a, size_t cap, sld_error *err)
{
    a->used = a->peak = 0;
    a->plan = a->overflow = false;
    a->cap = (cap + 63) & ~(size_t)63;
    a->base = sld_malloc_aligned(a->cap);
    if (!a->base) {
        a->cap = 0;
        return sld_err(err, SLD_ERR_NOMEM, "cannot allocate a %.1f MiB activation arena",
                       (double)cap / (1 << 20));
    }
    return SLD_OK;
}

void sld_arena_free(sld_arena *a)
{
    sld_free(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
}

void *sld_arena_alloc(sld_arena *a, size_t n)
{
    size_t r = (n + 63) & ~(size_t)63;
    if (r < n) {
        a->overflow = true;
        return NULL;
    }
    if (a->plan) {
        a->used += r;
        if (a->used > a->peak)
            a->peak = a->used;
        return NULL;
    }
    if (r > a->cap - a->used) {
        a->overflow = true;
        return NULL;
    }
    void *p = a->base + a->used;
    a->used += r;
    if (a->used > a->peak)
        a->peak = a->used;
    return p;
}
