/* err.c — status names and error-message helpers. */
#include "core/core.h"

#include <stdio.h>
#include <string.h>

const char *sld_status_str(sld_status s)
{
    switch (s) {
    case SLD_OK: return "ok";
    case SLD_ERR_INVALID_ARG: return "invalid argument";
    case SLD_ERR_IO: return "i/o error";
    case SLD_ERR_FORMAT: return "bad file format";
    case SLD_ERR_SHAPE: return "wrong tensor shape";
    case SLD_ERR_CONFIG: return "bad config";
    case SLD_ERR_UNSUPPORTED: return "unsupported";
    case SLD_ERR_NOMEM: return "out of memory";
    case SLD_ERR_CANCELLED: return "cancelled";
    case SLD_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

sld_status sld_err(sld_error *err, sld_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

sld_status sld_err_prefix(sld_error *err, const char *fmt, ...)
{
    if (!err)
        return SLD_ERR_INTERNAL;
    char pre[SLD_ERR_MSG_LEN], old[SLD_ERR_MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", pre, old);
    return err->code;
}

void sld_err_clear(sld_error *err)
{
    if (err) {
        err->code = SLD_OK;
        err->msg[0] = 0;
    }
}
