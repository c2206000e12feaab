/* alloc.c — the library's allocator wrappers with test fault injection.
 * The counter is atomic so parallel tests stay well defined. */
#include "core/core.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long g_count;
static atomic_long g_fail_at;

long sld_alloc_fail_at(long n)
{
    long c = atomic_exchange(&g_count, 0);
    atomic_store(&g_fail_at, n);
    return c;
}

static bool should_fail(void)
{
    long c = atomic_fetch_add(&g_count, 1) + 1;
    long f = atomic_load(&g_fail_at);
    return f > 0 && c >= f;
}

void *sld_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *sld_calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *sld_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void *sld_malloc_aligned(size_t n)
{
    if (should_fail())
        return NULL;
    size_t r = (n + 63) & ~(size_t)63;
    if (r < n)
        return NULL;
    return aligned_alloc(64, r ? r : 64);
}

void sld_free(void *p) { free(p); }

char *sld_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = sld_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}
