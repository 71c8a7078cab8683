/*
 * err.c: names and messages for return codes, and the per-thread detail of the last failure.
 * TD_E* codes come from the one X-macro list in tidings.h; anything else negative is -errno.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"

static _Thread_local char last_error[512];

const char *td_strerror(int rc)
{
    if (rc == 0)
        return "success";
    if (rc == TD_EAGAIN)
        return "need more input";
    switch (rc) {
#define XX(n, name, msg)                                                                           \
    case TD_##name:                                                                                \
        return msg;
        TD_ERRNO_MAP(XX)
#undef XX
    default:
        break;
    }
    if (rc < 0 && rc > -4096)
        return strerror(-rc); /* glibc's strerror is thread-safe for known codes */
    return "unknown error";
}

const char *td_errname(int rc)
{
    if (rc == TD_EAGAIN)
        return "TD_EAGAIN";
    switch (rc) {
#define XX(n, name, msg)                                                                           \
    case TD_##name:                                                                                \
        return "TD_" #name;
        TD_ERRNO_MAP(XX)
#undef XX
    default:
        break;
    }
    if (rc < 0 && rc > -4096) {
        const char *s = strerrorname_np(-rc);
        if (s)
            return s;
    }
    return "UNKNOWN";
}

const char *td_last_error(void)
{
    return last_error;
}

int td_fail(int rc, const char *fmt, ...)
{
    /* Formatted aside first: an argument may be td_last_error() itself (a detail that wraps
     * the one before), and vsnprintf's source and destination must not overlap. */
    char text[sizeof(last_error)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    memcpy(last_error, text, sizeof(text));
    return rc;
}

void td_error_clear(void)
{
    last_error[0] = 0;
}

const char *td_version_text(int64_t v, char *buf, size_t n)
{
    if (v == TD_VERSION_NO_STREAM)
        return "no_stream";
    if (v == TD_VERSION_EXISTS)
        return "exists";
    if (v == TD_VERSION_ANY)
        return "any";
    snprintf(buf, n, "%" PRId64, v);
    return buf;
}
