/*
 * avro_binary.c: one Avro datum in the binary encoding (specification, "Binary Encoding"),
 * decoded against a schema to its last byte: validation on the produce path (nothing
 * allocated, nothing built on success), and the same walk writing Avro's JSON encoding for the
 * command line.
 *
 * Encoding read: null: nothing; boolean: one byte, 0 or 1; int, long: zig-zag varints of at
 * most 5 and 10 bytes, in range; float, double: 4 and 8 bytes little-endian; bytes, string: a
 * long length then the bytes (strings UTF-8); fixed: its size in bytes; enum: an int index
 * below the symbol count; union: an int branch index, then that branch; record: its fields in
 * order; array, map: blocks, each a long count (negative: its absolute value, followed by a
 * long byte size of the block, which must be the items' size) of items (map: string key then
 * value), ended by a zero count.
 *
 * Bounds, whatever the bytes: a length or a count is compared to the bytes left before it is
 * used (every item but those of always-empty types takes a byte at least, and those are not
 * looped over when validating); nesting of records, arrays and maps is at most SCHEMA_MAX_DEPTH
 * (a union is no level of its own: it cannot hold a union directly); no allocation when validating.
 * The JSON writer bounds the items of always-empty types it expands, the only output not bounded by
 * the input's size.
 *
 * libavro's avro_value_read would do the decoding, but it allocates per datum (a generic
 * value), does not check UTF-8 and stops at the datum's end without telling whether bytes
 * remain; this walk is smaller than the glue it would need.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "schema/avro_int.h"

/* The JSON writer expands at most this many items of always-empty types (null, fixed 0). */
#define EMPTY_ITEMS_MAX (1u << 20)

typedef struct dec {
    const uint8_t *p, *end;
    av_buf *out; /* NULL when validating */
    schema_error *err;
    uint64_t empty_items;
} dec;

void av_err_prepend(schema_error *err, const char *seg, size_t n)
{
    if (!err)
        return;
    char tok[256];
    size_t t = 0;
    tok[t++] = '/';
    for (size_t i = 0; i < n && t + 3 < sizeof(tok); i++) {
        if (seg[i] == '~' || seg[i] == '/') {
            tok[t++] = '~';
            tok[t++] = seg[i] == '~' ? '0' : '1';
        } else {
            tok[t++] = seg[i];
        }
    }
    size_t old = strlen(err->path);
    if (t + old >= sizeof(err->path))
        old = sizeof(err->path) - 1 - t;
    memmove(err->path + t, err->path, old);
    memcpy(err->path, tok, t);
    err->path[t + old] = 0;
}

void av_err_prepend_index(schema_error *err, uint64_t i)
{
    char b[24];
    int k = snprintf(b, sizeof(b), "%llu", (unsigned long long)i);
    av_err_prepend(err, b, (size_t)k);
}

static int fail(dec *d, const char *rule, const char *msg)
{
    schema_set_error(d->err, "", rule, "%s", msg);
    return -1;
}

static int truncated(dec *d)
{
    return fail(d, "truncated", "the datum ends before its end");
}

static int rd_long(dec *d, int64_t *v)
{
    if (d->p < d->end && *d->p < 0x80) {
        uint8_t b = *d->p++;
        *v = (int64_t)(b >> 1) ^ -(int64_t)(b & 1);
        return 0;
    }
    uint64_t u = 0;
    for (int shift = 0;; shift += 7) {
        if (d->p >= d->end)
            return truncated(d);
        uint8_t b = *d->p++;
        if (shift == 63 && (b & 0xfe))
            return fail(d, "varint", "a long takes more than 64 bits");
        u |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
    }
    *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    return 0;
}

static int rd_int(dec *d, int32_t *v)
{
    uint64_t u = 0;
    for (int shift = 0;; shift += 7) {
        if (d->p >= d->end)
            return truncated(d);
        uint8_t b = *d->p++;
        if (shift == 28 && (b & 0xf0))
            return fail(d, "varint", "an int takes more than 32 bits");
        u |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
    }
    *v = (int32_t)((uint32_t)(u >> 1) ^ -(uint32_t)(u & 1));
    return 0;
}

/* Bytes as Avro's JSON encoding writes them: each byte the code point of the same value. */
static void out_bytes(av_buf *b, const uint8_t *p, size_t n)
{
    av_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c >= 0x80) {
            char u[2] = {(char)(0xc0 | (c >> 6)), (char)(0x80 | (c & 0x3f))};
            av_buf_put(b, u, 2);
        } else if (c < 0x20 || c == '"' || c == '\\') {
            char e[8];
            if (c == '"' || c == '\\')
                snprintf(e, sizeof(e), "\\%c", c);
            else
                snprintf(e, sizeof(e), "\\u%04X", c);
            av_buf_puts(b, e);
        } else {
            av_buf_putc(b, (char)c);
        }
    }
    av_buf_putc(b, '"');
}

static void out_num(av_buf *b, long long v)
{
    char t[24];
    int k = snprintf(t, sizeof(t), "%lld", v);
    av_buf_put(b, t, (size_t)k);
}

static void out_float(av_buf *b, float f)
{
    if (isnan(f) || isinf(f)) {
        av_buf_putc(b, '"');
        av_buf_java_double(b, f);
        av_buf_putc(b, '"');
        return;
    }
    /* The shortest decimal that reads back as f, printed as the double it denotes. */
    char t[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(t, sizeof(t), "%.*e", prec - 1, (double)f);
        if (strtof(t, NULL) == f)
            break;
    }
    av_buf_java_double(b, strtod(t, NULL));
}

static void out_double(av_buf *b, double v)
{
    bool q = isnan(v) || isinf(v);
    if (q)
        av_buf_putc(b, '"');
    av_buf_java_double(b, v);
    if (q)
        av_buf_putc(b, '"');
}

static int decode(dec *d, const av_node *n, int depth);

static int decode_record(dec *d, const av_node *n, int depth)
{
    if (d->out)
        av_buf_putc(d->out, '{');
    for (size_t i = 0; i < n->nfields; i++) {
        const av_field *f = &n->fields[i];
        if (d->out) {
            if (i)
                av_buf_putc(d->out, ',');
            av_buf_json_str(d->out, f->name, strlen(f->name));
            av_buf_putc(d->out, ':');
        }
        if (decode(d, f->type, depth + 1)) {
            av_err_prepend(d->err, f->name, strlen(f->name));
            return -1;
        }
    }
    if (d->out)
        av_buf_putc(d->out, '}');
    return 0;
}

/* A string or bytes: the length, checked against what is left, then the bytes. */
static int rd_bytes(dec *d, const uint8_t **p, size_t *len)
{
    int64_t l;
    if (rd_long(d, &l))
        return -1;
    if (l < 0)
        return fail(d, "length", "a negative length");
    if ((uint64_t)l > (uint64_t)(d->end - d->p))
        return truncated(d);
    *p = d->p;
    *len = (size_t)l;
    d->p += l;
    return 0;
}

static int decode_blocks(dec *d, const av_node *n, int depth)
{
    bool map = n->kind == AV_MAP;
    if (d->out)
        av_buf_putc(d->out, map ? '{' : '[');
    uint64_t index = 0;
    for (;;) {
        int64_t count;
        if (rd_long(d, &count))
            return -1;
        if (count == 0)
            break;
        const uint8_t *block = NULL;
        int64_t size = 0;
        if (count < 0) {
            if (count == INT64_MIN)
                return fail(d, "length", "a block count out of range");
            count = -count;
            if (rd_long(d, &size))
                return -1;
            if (size < 0)
                return fail(d, "length", "a negative block size");
            if ((uint64_t)size > (uint64_t)(d->end - d->p))
                return truncated(d);
            block = d->p;
        }
        if (!map && n->items->always_empty) {
            /* Nothing to read; the JSON writer writes them, up to a bound. */
            if (d->out) {
                if ((uint64_t)count > EMPTY_ITEMS_MAX - d->empty_items)
                    return fail(d, "length", "too many empty items to print");
                d->empty_items += (uint64_t)count;
            }
        } else if ((uint64_t)count > (uint64_t)(d->end - d->p)) {
            return truncated(d);
        }
        for (int64_t i = 0; i < count; i++, index++) {
            if (d->out && index)
                av_buf_putc(d->out, ',');
            if (map) {
                const uint8_t *k;
                size_t kl;
                if (rd_bytes(d, &k, &kl))
                    goto fail;
                if (!td_utf8_valid(k, kl)) {
                    fail(d, "utf8", "a map key is not valid UTF-8");
                    goto fail;
                }
                if (d->out) {
                    av_buf_json_str(d->out, (const char *)k, kl);
                    av_buf_putc(d->out, ':');
                }
                if (decode(d, n->items, depth + 1)) {
                    av_err_prepend(d->err, (const char *)k, kl);
                    return -1;
                }
                continue;
            }
            if (n->items->always_empty && !d->out)
                break;
            if (decode(d, n->items, depth + 1))
                goto fail;
        }
        /* A reader that skips blocks by their size must land where the items end. */
        if (block && d->p - block != size)
            return fail(d, "length", "a block's byte size is not the size of its items");
    }
    if (d->out)
        av_buf_putc(d->out, map ? '}' : ']');
    return 0;
fail:
    if (!map)
        av_err_prepend_index(d->err, index);
    return -1;
}

static int decode_union(dec *d, const av_node *n, int depth)
{
    int32_t i; /* an int, as Java's readIndex reads it */
    if (rd_int(d, &i))
        return -1;
    if (i < 0 || (size_t)i >= n->nbranches) {
        schema_set_error(d->err, "", "union", "union branch %d out of range (%zu branches)", i,
                         n->nbranches);
        return -1;
    }
    const av_node *b = n->branches[i];
    if (!d->out || b->kind == AV_NULL)
        return decode(d, b, depth);
    const char *name = b->fullname ? b->fullname : av_kind_names[b->kind];
    av_buf_putc(d->out, '{');
    av_buf_json_str(d->out, name, strlen(name));
    av_buf_putc(d->out, ':');
    if (decode(d, b, depth))
        return -1;
    av_buf_putc(d->out, '}');
    return 0;
}

static int decode(dec *d, const av_node *n, int depth)
{
    int64_t l;
    int32_t i;
    const uint8_t *p;
    size_t len;
    switch (n->kind) {
    case AV_NULL:
        if (d->out)
            av_buf_puts(d->out, "null");
        return 0;
    case AV_BOOLEAN:
        if (d->p >= d->end)
            return truncated(d);
        if (*d->p > 1)
            return fail(d, "boolean", "a boolean byte other than 0 or 1");
        if (d->out)
            av_buf_puts(d->out, *d->p ? "true" : "false");
        d->p++;
        return 0;
    case AV_INT:
        if (rd_int(d, &i))
            return -1;
        if (d->out)
            out_num(d->out, i);
        return 0;
    case AV_LONG:
        if (rd_long(d, &l))
            return -1;
        if (d->out)
            out_num(d->out, (long long)l);
        return 0;
    case AV_FLOAT:
    case AV_DOUBLE: {
        size_t w = n->kind == AV_FLOAT ? 4 : 8;
        if ((size_t)(d->end - d->p) < w)
            return truncated(d);
        if (d->out) {
            uint64_t u = 0;
            for (size_t k = 0; k < w; k++)
                u |= (uint64_t)d->p[k] << (8 * k);
            if (w == 4) {
                uint32_t u32 = (uint32_t)u;
                float f;
                memcpy(&f, &u32, 4);
                out_float(d->out, f);
            } else {
                double v;
                memcpy(&v, &u, 8);
                out_double(d->out, v);
            }
        }
        d->p += w;
        return 0;
    }
    case AV_BYTES:
    case AV_STRING:
        if (rd_bytes(d, &p, &len))
            return -1;
        if (n->kind == AV_STRING && !td_utf8_valid(p, len))
            return fail(d, "utf8", "a string is not valid UTF-8");
        if (d->out) {
            if (n->kind == AV_STRING)
                av_buf_json_str(d->out, (const char *)p, len);
            else
                out_bytes(d->out, p, len);
        }
        return 0;
    case AV_FIXED:
        if ((size_t)(d->end - d->p) < n->size)
            return truncated(d);
        if (d->out)
            out_bytes(d->out, d->p, n->size);
        d->p += n->size;
        return 0;
    case AV_ENUM:
        if (rd_int(d, &i))
            return -1;
        if (i < 0 || (size_t)i >= n->nsymbols) {
            schema_set_error(d->err, "", "enum", "enum index %d out of range (%zu symbols)", i,
                             n->nsymbols);
            return -1;
        }
        if (d->out)
            av_buf_json_str(d->out, n->symbols[i], strlen(n->symbols[i]));
        return 0;
    default:
        break;
    }
    if (n->kind == AV_UNION)
        return decode_union(d, n, depth);
    if (depth >= SCHEMA_MAX_DEPTH)
        return fail(d, "depth", "the datum nests too deeply");
    if (n->kind == AV_RECORD)
        return decode_record(d, n, depth);
    return decode_blocks(d, n, depth);
}

static int decode_all(dec *d, const av_schema *s)
{
    if (d->err)
        d->err->path[0] = 0;
    if (decode(d, s->root, 0))
        return -1;
    if (d->p != d->end) {
        schema_set_error(d->err, "", "trailing", "%zu bytes after the end of the datum",
                         (size_t)(d->end - d->p));
        return -1;
    }
    return 0;
}

static const uint8_t nothing[1];

int av_validate(const av_schema *s, const uint8_t *p, size_t n, schema_error *err)
{
    if (!p)
        p = nothing;
    dec d = {.p = p, .end = p + n, .err = err};
    return decode_all(&d, s);
}

int av_to_json(const av_schema *s, const uint8_t *p, size_t n, char **json, schema_error *err)
{
    av_buf b = {0};
    if (!p)
        p = nothing;
    dec d = {.p = p, .end = p + n, .out = &b, .err = err};
    *json = NULL;
    if (decode_all(&d, s)) {
        free(b.p);
        return -1;
    }
    if (b.failed) {
        free(b.p);
        schema_set_error(err, "", "memory", "out of memory");
        return -1;
    }
    *json = b.p;
    return 0;
}
