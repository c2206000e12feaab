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

/* Messages are one line of text a person reads, but they quote names from
 * files (ONNX node names, JSON keys, CSV cells) that may hold any bytes:
 * control characters and bytes that are not valid UTF-8 become '?', so a
 * message never carries raw bytes to a terminal or a log. */
static void msg_clean(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                                : (c & 0xf8) == 0xf0                    ? 4
                                                                        : 0;
        if (len == 1) {
            if (c < 0x20 || c == 0x7f)
                *p = '?';
            p++;
            continue;
        }
        int ok = len > 0 && !(c == 0xc0 || c == 0xc1 || c > 0xf4);
        for (int k = 1; ok && k < len; k++)
            ok = (p[k] & 0xc0) == 0x80;
        if (ok) {
            p += len;
        } else {
            *p = '?';
            p++;
        }
    }
}

sld_status sld_err(sld_error *err, sld_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        msg_clean(err->msg);
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
    msg_clean(err->msg);
    return err->code;
}

void sld_err_clear(sld_error *err)
{
    if (err) {
        err->code = SLD_OK;
        err->msg[0] = 0;
    }
}
