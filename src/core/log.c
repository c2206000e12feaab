/* log.c — the process-wide log sink installed by the application. */
#include "core/core.h"

#include <stdio.h>

static sld_log_fn g_log_fn;
static void *g_log_user;

void sld_log_set(sld_log_fn fn, void *user)
{
    g_log_fn = fn;
    g_log_user = user;
}

void sld_log(sld_log_level level, const char *fmt, ...)
{
    if (!g_log_fn)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_log_fn(level, buf, g_log_user);
}
