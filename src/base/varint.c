/*
 * varint.c: Kafka's variable-length integers (the protobuf encodings).
 *
 * Unsigned varint: 7 bits per byte, least significant group first, high bit set on every byte
 * but the last. Signed values are zigzag-mapped first ((v << 1) ^ (v >> 63)) so that small
 * negative numbers stay short. A 32-bit varint has at most 5 bytes, a 64-bit one 10; longer
 * encodings are rejected as TD_EPROTO rather than silently truncated.
 */
#include "base/base.h"

static int uvarint_decode_max(const uint8_t *p, size_t n, uint64_t *out, size_t max_bytes)
{
    uint64_t v = 0;
    for (size_t i = 0; i < max_bytes; i++) {
        if (i >= n)
            return TD_EAGAIN;
        uint8_t b = p[i];
        if (i == 9 && b > 1)
            return TD_EPROTO; /* the 10th byte may only hold bit 63 */
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return (int)(i + 1);
        }
    }
    return TD_EPROTO;
}

int td_uvarint_decode(const uint8_t *p, size_t n, uint64_t *out)
{
    return uvarint_decode_max(p, n, out, 10);
}

int td_uvarint32_decode(const uint8_t *p, size_t n, uint32_t *out)
{
    uint64_t v;
    int rc = uvarint_decode_max(p, n, &v, 5);
    if (rc < 0)
        return rc;
    if (v > UINT32_MAX)
        return TD_EPROTO;
    *out = (uint32_t)v;
    return rc;
}

int td_varint_decode(const uint8_t *p, size_t n, int32_t *out)
{
    uint32_t u;
    int rc = td_uvarint32_decode(p, n, &u);
    if (rc < 0)
        return rc;
    *out = (int32_t)((u >> 1) ^ (~(u & 1) + 1));
    return rc;
}

int td_varlong_decode(const uint8_t *p, size_t n, int64_t *out)
{
    uint64_t u;
    int rc = td_uvarint_decode(p, n, &u);
    if (rc < 0)
        return rc;
    *out = (int64_t)((u >> 1) ^ (~(u & 1) + 1));
    return rc;
}

size_t td_uvarint_encode(uint8_t *p, uint64_t v)
{
    size_t i = 0;
    while (v >= 0x80) {
        p[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[i++] = (uint8_t)v;
    return i;
}

size_t td_varint_encode(uint8_t *p, int32_t v)
{
    uint32_t u = ((uint32_t)v << 1) ^ (uint32_t)(v >> 31);
    return td_uvarint_encode(p, u);
}

size_t td_varlong_encode(uint8_t *p, int64_t v)
{
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    return td_uvarint_encode(p, u);
}

size_t td_uvarint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t td_varint_size(int32_t v)
{
    return td_uvarint_size(((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

size_t td_varlong_size(int64_t v)
{
    return td_uvarint_size(((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}
