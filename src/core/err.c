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

long sld_utf8_invalid_at(const char *str, size_t n)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        int len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return (long)i;
        }
        if (i + (size_t)len > n)
            return (long)i;
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return (long)i;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return (long)i;
        i += (size_t)len;
    }
    return -1;
}
