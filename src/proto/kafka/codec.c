/*
 * codec.c: Kafka wire primitives (classic and flexible encodings), framing, the request
 * header, and what the versions of an API mean for its encoding. See kafka.h for the layouts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/kafka/kafka.h"

/* ---------------------------------------------------------------------------------------------
 * Versions (the table of APIs is apis.c's)
 */
bool kafka_is_flexible(int16_t key, int16_t version)
{
    const kafka_api *a = kafka_api_find(key);
    return a && version >= a->flexible && version <= a->max;
}

int kafka_response_header_version(int16_t key, int16_t version)
{
    if (key == KAFKA_API_VERSIONS)
        return 0;
    return kafka_is_flexible(key, version) ? 1 : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Reader
 */
void kr_init(kafka_reader *r, const uint8_t *p, size_t n, td_arena *a)
{
    r->p = p;
    r->n = n;
    r->off = 0;
    r->err = 0;
    r->flexible = false;
    r->arena = a;
}

static const uint8_t *take(kafka_reader *r, size_t n)
{
    if (r->err)
        return NULL;
    if (r->n - r->off < n) {
        r->err = TD_EPROTO;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

int8_t kr_i8(kafka_reader *r)
{
    const uint8_t *p = take(r, 1);
    return p ? (int8_t)p[0] : 0;
}

int16_t kr_i16(kafka_reader *r)
{
    const uint8_t *p = take(r, 2);
    return p ? (int16_t)td_load_be16(p) : 0;
}

int32_t kr_i32(kafka_reader *r)
{
    const uint8_t *p = take(r, 4);
    return p ? (int32_t)td_load_be32(p) : 0;
}

int64_t kr_i64(kafka_reader *r)
{
    const uint8_t *p = take(r, 8);
    return p ? (int64_t)td_load_be64(p) : 0;
}

double kr_f64(kafka_reader *r)
{
    const uint8_t *p = take(r, 8);
    if (!p)
        return 0;
    uint64_t bits = td_load_be64(p);
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

bool kr_bool(kafka_reader *r)
{
    return kr_i8(r) != 0;
}

uint32_t kr_uvarint(kafka_reader *r)
{
    if (r->err)
        return 0;
    uint32_t v = 0;
    int n = td_uvarint32_decode(r->p + r->off, r->n - r->off, &v);
    if (n <= 0) {
        r->err = TD_EPROTO;
        return 0;
    }
    r->off += (size_t)n;
    return v;
}

void kr_uuid(kafka_reader *r, uint8_t out[16])
{
    const uint8_t *p = take(r, 16);
    if (p)
        memcpy(out, p, 16);
    else
        memset(out, 0, 16);
}

void *kr_alloc(kafka_reader *r, size_t count, size_t size)
{
    if (r->err)
        return NULL;
    if (count == 0)
        count = 1; /* a valid pointer for empty arrays */
    void *p = td_arena_calloc(r->arena, count, size);
    if (!p)
        r->err = -ENOMEM;
    return p;
}

void *kr_array_alloc(kafka_reader *r, size_t size, int32_t *count)
{
    int32_t n = kr_array(r);
    *count = n < 0 || r->err ? 0 : n;
    return kr_alloc(r, (size_t)*count, size);
}

/*
 * Strings are handed to the handlers as C strings, but a Kafka string may hold NUL bytes
 * ("ab\0cd" is a valid STRING on the wire): cutting it at the NUL would turn it into another,
 * possibly valid, name. So each NUL byte is kept as the two bytes C0 80, the overlong encoding
 * of U+0000 that Java calls "modified UTF-8". C0 80 never occurs in valid UTF-8, so no valid
 * string changes meaning and none can collide with a string that held a NUL; names with it
 * fail every name rule (a topic name holds no byte >= 0x80 but as %XX); ko_string_n turns it back
 * into a NUL, so responses echo the client's bytes. The cost is one memchr per string.
 */
static const char *string_of_len(kafka_reader *r, int64_t len)
{
    if (len < 0)
        return NULL;
    const uint8_t *p = take(r, (size_t)len);
    if (!p)
        return NULL;
    size_t nuls = 0;
    for (const uint8_t *z = len ? memchr(p, 0, (size_t)len) : NULL; z;
         z = memchr(z + 1, 0, (size_t)len - (size_t)(z + 1 - p)))
        nuls++;
    char *s = td_arena_alloc(r->arena, (size_t)len + nuls + 1);
    if (!s) {
        r->err = -ENOMEM;
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < (size_t)len; i++) {
        if (p[i]) {
            s[o++] = (char)p[i];
        } else {
            s[o++] = (char)0xC0;
            s[o++] = (char)0x80;
        }
    }
    s[o] = 0;
    return s;
}

static const char *kr_string_classic(kafka_reader *r)
{
    int16_t len = kr_i16(r);
    if (len < -1)
        r->err = r->err ? r->err : TD_EPROTO;
    return string_of_len(r, len);
}

const char *kr_string(kafka_reader *r)
{
    if (!r->flexible)
        return kr_string_classic(r);
    uint32_t len = kr_uvarint(r);
    if (len > 32768) /* string fields are bounded by int16 in the schema */
        r->err = r->err ? r->err : TD_EPROTO;
    return string_of_len(r, (int64_t)len - 1);
}

uint8_t *kr_bytes(kafka_reader *r, int32_t *len)
{
    int64_t n;
    if (r->flexible)
        n = (int64_t)kr_uvarint(r) - 1;
    else
        n = kr_i32(r);
    if (n < -1)
        r->err = r->err ? r->err : TD_EPROTO;
    if (r->err || n < 0) {
        *len = -1;
        return NULL;
    }
    const uint8_t *p = take(r, (size_t)n);
    *len = p ? (int32_t)n : -1;
    return (uint8_t *)p;
}

int32_t kr_array(kafka_reader *r)
{
    int64_t n;
    if (r->flexible)
        n = (int64_t)kr_uvarint(r) - 1;
    else
        n = kr_i32(r);
    if (r->err)
        return 0;
    if (n < -1) {
        r->err = TD_EPROTO;
        return 0;
    }
    if (n > 0 && (uint64_t)n > r->n - r->off) {
        r->err = TD_EPROTO; /* more elements than bytes left */
        return 0;
    }
    return (int32_t)n;
}

void kr_tags(kafka_reader *r)
{
    if (!r->flexible)
        return;
    uint32_t n = kr_uvarint(r);
    for (uint32_t i = 0; i < n && !r->err; i++) {
        kr_uvarint(r); /* tag */
        uint32_t size = kr_uvarint(r);
        take(r, size);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Output
 */
void ko_init(kafka_out *o)
{
    memset(o, 0, sizeof(*o));
}

void ko_free(kafka_out *o)
{
    td_buf_free(&o->mem);
    free(o->files);
    memset(o, 0, sizeof(*o));
}

static void put(kafka_out *o, const void *p, size_t n)
{
    if (!o->err && td_buf_append(&o->mem, p, n) != 0)
        o->err = -ENOMEM;
}

void ko_i8(kafka_out *o, int8_t v)
{
    put(o, &v, 1);
}

void ko_i16(kafka_out *o, int16_t v)
{
    uint8_t b[2];
    td_store_be16(b, (uint16_t)v);
    put(o, b, 2);
}

void ko_i32(kafka_out *o, int32_t v)
{
    uint8_t b[4];
    td_store_be32(b, (uint32_t)v);
    put(o, b, 4);
}

void ko_i64(kafka_out *o, int64_t v)
{
    uint8_t b[8];
    td_store_be64(b, (uint64_t)v);
    put(o, b, 8);
}

void ko_f64(kafka_out *o, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    uint8_t b[8];
    td_store_be64(b, bits);
    put(o, b, 8);
}

void ko_bool(kafka_out *o, bool v)
{
    ko_i8(o, v ? 1 : 0);
}

void ko_uvarint(kafka_out *o, uint32_t v)
{
    uint8_t b[10];
    put(o, b, td_uvarint_encode(b, v));
}

void ko_uuid(kafka_out *o, const uint8_t v[16])
{
    put(o, v, 16);
}

/* Writes s[0..n) as a Kafka string, with each C0 80 pair (a NUL the decoder kept, see
 * string_of_len) turned back into a NUL byte. */
static void ko_string_n(kafka_out *o, const char *s, size_t n)
{
    if (n > INT16_MAX)
        n = INT16_MAX;
    size_t pairs = 0;
    for (const char *z = n ? memchr(s, 0xC0, n) : NULL; z; z = memchr(z + 1, 0xC0, n - (size_t)(z + 1 - s)))
        if ((size_t)(z - s) + 1 < n && (uint8_t)z[1] == 0x80)
            pairs++;
    size_t len = n - pairs;
    if (o->flexible)
        ko_uvarint(o, (uint32_t)len + 1);
    else
        ko_i16(o, (int16_t)len);
    if (!pairs) {
        put(o, s, n);
        return;
    }
    size_t from = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if ((uint8_t)s[i] == 0xC0 && (uint8_t)s[i + 1] == 0x80) {
            put(o, s + from, i - from);
            put(o, "", 1);
            from = i + 2;
            i++;
        }
    }
    put(o, s + from, n - from);
}

void ko_string(kafka_out *o, const char *s)
{
    if (!s) {
        if (o->flexible)
            ko_uvarint(o, 0);
        else
            ko_i16(o, -1);
        return;
    }
    ko_string_n(o, s, strlen(s));
}

void ko_bytes_len(kafka_out *o, int32_t n)
{
    if (o->flexible)
        ko_uvarint(o, (uint32_t)(n + 1));
    else
        ko_i32(o, n);
}

void ko_bytes(kafka_out *o, const void *p, int32_t n)
{
    ko_bytes_len(o, n);
    if (n > 0)
        put(o, p, (size_t)n);
}

void ko_string_nn(kafka_out *o, const char *s)
{
    ko_string(o, s ? s : "");
}

void ko_set_flexible(kafka_out *o, int16_t key, int16_t v)
{
    o->flexible = kafka_is_flexible(key, v);
}

void kr_set_flexible(kafka_reader *r, int16_t key, int16_t v)
{
    r->flexible = kafka_is_flexible(key, v);
}

void ko_array(kafka_out *o, int32_t n)
{
    if (o->flexible)
        ko_uvarint(o, (uint32_t)(n + 1));
    else
        ko_i32(o, n);
}

void ko_tags(kafka_out *o)
{
    if (o->flexible)
        ko_uvarint(o, 0);
}

void ko_file(kafka_out *o, int fd, int64_t pos, int64_t len, void *ref)
{
    if (o->err)
        return;
    if (td_grow(&o->files, &o->files_cap, o->nfiles, sizeof(*o->files), 8) != 0) {
        o->err = -ENOMEM;
        return;
    }
    o->files[o->nfiles++] = (kafka_file_part){o->mem.len, fd, pos, len, ref};
    o->file_bytes += len;
}

void ko_begin(kafka_out *o, int32_t correlation_id, int header_version)
{
    o->flexible = false;
    ko_i32(o, 0); /* size, patched by ko_end */
    ko_i32(o, correlation_id);
    if (header_version >= 1) {
        o->flexible = true;
        ko_tags(o);
    }
}

void ko_end(kafka_out *o)
{
    if (o->err || o->mem.len < 4)
        return;
    int64_t size = (int64_t)o->mem.len - 4 + o->file_bytes;
    td_store_be32(o->mem.p, (uint32_t)size);
}

/* ---------------------------------------------------------------------------------------------
 * Framing and header
 */
int kafka_frame(const uint8_t *p, size_t n, size_t max, size_t *frame_len)
{
    if (n < 4)
        return TD_EAGAIN;
    int32_t size = (int32_t)td_load_be32(p);
    if (size < 0 || (size_t)size > max)
        return TD_ETOOBIG;
    if (n - 4 < (size_t)size)
        return TD_EAGAIN;
    *frame_len = 4 + (size_t)size;
    return 0;
}

int kafka_decode_header(kafka_reader *r, kafka_header *h)
{
    r->flexible = false;
    h->api_key = kr_i16(r);
    h->api_version = kr_i16(r);
    h->correlation_id = kr_i32(r);
    h->client_id = kr_string_classic(r);
    if (!r->err && kafka_is_flexible(h->api_key, h->api_version)) {
        r->flexible = true;
        kr_tags(r);
    }
    h->body_off = r->off;
    return r->err;
}

/* ---------------------------------------------------------------------------------------------
 * ApiVersions
 */
int kafka_decode_api_versions(kafka_reader *r, int16_t v, kafka_api_versions_req *q)
{
    memset(q, 0, sizeof(*q));
    if (v >= 3) {
        q->client_software_name = kr_string(r);
        q->client_software_version = kr_string(r);
        kr_tags(r);
    }
    return r->err;
}

void kafka_encode_api_versions(kafka_out *o, int16_t v, int16_t error_code)
{
    /* The body is flexible from v3 even though the header is v0. An error answer is always
     * encoded as v0 (the client may not understand the version it asked for). */
    o->flexible = v >= 3 && error_code == KERR_NONE;
    ko_i16(o, error_code);
    size_t n;
    const kafka_api *all = kafka_api_all(&n);
    ko_array(o, (int32_t)n);
    for (size_t i = 0; i < n; i++) {
        ko_i16(o, all[i].key);
        ko_i16(o, all[i].min);
        ko_i16(o, all[i].max);
        ko_tags(o);
    }
    if (v >= 1 && (error_code == KERR_NONE))
        ko_i32(o, 0); /* throttle_time_ms */
    ko_tags(o);
}
