/*
 * buf.c: owned growable buffers (td_buf). Growth doubles, so appending n bytes one at a time
 * costs O(n) amortised.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

void td_buf_init(td_buf *b)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

void td_buf_free(td_buf *b)
{
    free(b->p);
    td_buf_init(b);
}

int td_grow(void *arr, size_t *cap, size_t n, size_t size, size_t first)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : first;
    if (c < n + 1 || c > SIZE_MAX / size)
        return -ENOMEM;
    void **v = arr;
    void *p = realloc(*v, c * size);
    if (!p)
        return -ENOMEM;
    *v = p;
    *cap = c;
    return 0;
}

size_t td_u64_text(char *out, uint64_t v)
{
    char t[20];
    size_t n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = t[n - 1 - i];
    return n;
}

int td_buf_reserve(td_buf *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int td_buf_reserve_exact(td_buf *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    uint8_t *p = realloc(b->p, b->len + extra);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = b->len + extra;
    return 0;
}

int td_buf_append(td_buf *b, const void *p, size_t n)
{
    int rc = td_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

int td_buf_append_u8(td_buf *b, uint8_t v)
{
    return td_buf_append(b, &v, 1);
}

int td_buf_append_be16(td_buf *b, uint16_t v)
{
    uint8_t t[2];
    td_store_be16(t, v);
    return td_buf_append(b, t, 2);
}

int td_buf_append_be32(td_buf *b, uint32_t v)
{
    uint8_t t[4];
    td_store_be32(t, v);
    return td_buf_append(b, t, 4);
}

int td_buf_append_be64(td_buf *b, uint64_t v)
{
    uint8_t t[8];
    td_store_be64(t, v);
    return td_buf_append(b, t, 8);
}

int td_buf_append_varint(td_buf *b, int32_t v)
{
    uint8_t t[10];
    return td_buf_append(b, t, td_varint_encode(t, v));
}

int td_buf_append_varlong(td_buf *b, int64_t v)
{
    uint8_t t[10];
    return td_buf_append(b, t, td_varlong_encode(t, v));
}

int td_buf_append_uvarint(td_buf *b, uint64_t v)
{
    uint8_t t[10];
    return td_buf_append(b, t, td_uvarint_encode(t, v));
}
