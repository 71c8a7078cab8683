/*
 * base64.c: RFC 4648 base64 (the standard alphabet), for JSON representations of bytes, and
 * base64url without padding (section 5), for ids and secrets.
 */
#include "base/base.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Encodes n bytes into o in alphabet a, padded with '=' or not; returns the end. */
static char *encode(const uint8_t *p, size_t n, const char *a, bool pad, char *o)
{
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        *o++ = a[v >> 18];
        *o++ = a[(v >> 12) & 63];
        if (i + 1 < n || pad)
            *o++ = i + 1 < n ? a[(v >> 6) & 63] : '=';
        if (i + 2 < n || pad)
            *o++ = i + 2 < n ? a[v & 63] : '=';
    }
    return o;
}

int td_base64_encode(td_buf *out, const void *data, size_t n)
{
    int rc = td_buf_reserve(out, (n + 2) / 3 * 4 + 1);
    if (rc)
        return rc;
    char *o = encode(data, n, alphabet, true, (char *)out->p + out->len);
    out->len = (size_t)((uint8_t *)o - out->p);
    out->p[out->len] = 0; /* reserved above; not counted */
    return 0;
}

void td_base64url(const void *data, size_t n, char *out)
{
    *encode(data, n, url_alphabet, false, out) = 0;
}

static int value_of(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int td_base64_decode(td_buf *out, const char *s, size_t n)
{
    /* Padding is optional; when present it must complete the last group. */
    size_t pad = 0;
    while (n > 0 && s[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (n % 4 == 1 || (pad && (n + pad) % 4 != 0))
        return td_fail(TD_EINVAL, "invalid base64: wrong length");
    int rc = td_buf_reserve(out, n / 4 * 3 + 3);
    if (rc)
        return rc;
    uint8_t *o = out->p + out->len;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = value_of((uint8_t)s[i]);
        if (v < 0)
            return td_fail(TD_EINVAL, "invalid base64: character %zu is not in the alphabet", i);
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (uint8_t)(acc >> bits);
        }
    }
    /* The bits left over must be zero (a canonical encoding). */
    if (acc & ((1u << bits) - 1))
        return td_fail(TD_EINVAL, "invalid base64: non-zero trailing bits");
    out->len = (size_t)(o - out->p);
    return 0;
}
