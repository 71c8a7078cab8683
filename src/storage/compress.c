/*
 * compress.c: the compression codecs of Kafka record batches, over Debian's libraries.
 *
 * Framings, as Kafka clients write them:
 * - gzip (1): an RFC 1952 gzip stream (zlib with windowBits 15 + 16).
 * - snappy (2): Java clients write the xerial framing: the 8-byte magic 82 'SNAPPY' 00, two
 *   big-endian int32 version fields (1, 1), then blocks of [int32 BE length][raw snappy block].
 *   librdkafka reads both this and a plain raw snappy block, and so do we (by the magic).
 *   We write the xerial framing, which every client reads.
 * - lz4 (3): the LZ4 frame format (Kafka since magic 1).
 * - zstd (4): zstd frames; the content size may be absent, so we decompress by streaming.
 *
 * Every decompressor stops at max_out bytes (TD_ETOOBIG), so a small hostile input cannot make
 * the broker allocate without bound, and maps every library error to TD_ECORRUPT.
 */
#include <errno.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "storage/batch.h"

const char *td_compression_name(int codec)
{
    switch (codec) {
    case TD_COMPRESS_NONE:
        return "none";
    case TD_COMPRESS_GZIP:
        return "gzip";
    case TD_COMPRESS_SNAPPY:
        return "snappy";
    case TD_COMPRESS_LZ4:
        return "lz4";
    case TD_COMPRESS_ZSTD:
        return "zstd";
    default:
        return "unknown";
    }
}

/* Grows out so that at least `want` bytes are free, without passing the max_out total. */
static int grow(td_buf *out, size_t start, size_t want, size_t max_out)
{
    size_t used = out->len - start;
    if (used >= max_out)
        return TD_ETOOBIG;
    size_t room = TD_MIN(want, max_out - used);
    return td_buf_reserve(out, room);
}

/* ---------------------------------------------------------------------------------------------
 * gzip
 */
static int gzip_compress(td_slice in, td_buf *out, int level)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, level ? level : Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    uLong bound = deflateBound(&z, (uLong)in.n);
    int rc = td_buf_reserve(out, bound);
    if (rc == 0) {
        z.next_in = (Bytef *)in.p;
        z.avail_in = (uInt)in.n;
        z.next_out = out->p + out->len;
        z.avail_out = (uInt)bound;
        if (deflate(&z, Z_FINISH) != Z_STREAM_END)
            rc = -ENOMEM;
        else
            out->len += z.total_out;
    }
    deflateEnd(&z);
    return rc;
}

static int gzip_decompress(td_slice in, td_buf *out, size_t max_out)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    /* 15 + 32: gzip or zlib header, detected. */
    if (inflateInit2(&z, 15 + 32) != Z_OK)
        return -ENOMEM;
    /* start: where this call's output begins (for max_out); member: where the current gzip
     * member's output begins (z.total_out restarts at each member). */
    size_t start = out->len, member = out->len;
    z.next_in = (Bytef *)in.p;
    z.avail_in = (uInt)in.n;
    int rc = 0;
    for (;;) {
        rc = grow(out, start, TD_MAX(in.n * 2, 4096), max_out);
        if (rc)
            break;
        size_t room = TD_MIN(out->cap - out->len, max_out - (out->len - start));
        z.next_out = out->p + out->len;
        z.avail_out = (uInt)TD_MIN(room, UINT32_MAX);
        int zr = inflate(&z, Z_NO_FLUSH);
        out->len = member + z.total_out;
        if (zr == Z_STREAM_END) {
            if (z.avail_in == 0)
                break;
            /* Concatenated gzip members: go on with the next one. */
            if (inflateReset(&z) != Z_OK) {
                rc = TD_ECORRUPT;
                break;
            }
            member = out->len;
            continue;
        }
        if (zr == Z_BUF_ERROR && z.avail_in == 0) {
            rc = td_fail(TD_ECORRUPT, "gzip data is truncated");
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = td_fail(TD_ECORRUPT, "gzip data is corrupt: %s", z.msg ? z.msg : "error");
            break;
        }
    }
    inflateEnd(&z);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * snappy
 */
static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER 16
#define XERIAL_BLOCK (32 * 1024)

static int snappy_compress_block(const uint8_t *p, size_t n, td_buf *out)
{
    size_t bound = snappy_max_compressed_length(n);
    int rc = td_buf_reserve(out, 4 + bound);
    if (rc)
        return rc;
    size_t clen = bound;
    if (snappy_compress((const char *)p, n, (char *)out->p + out->len + 4, &clen) != SNAPPY_OK)
        return -ENOMEM;
    td_store_be32(out->p + out->len, (uint32_t)clen);
    out->len += 4 + clen;
    return 0;
}

static int snappy_compress_xerial(td_slice in, td_buf *out)
{
    int rc = td_buf_append(out, xerial_magic, 8);
    rc = rc ? rc : td_buf_append_be32(out, 1);
    rc = rc ? rc : td_buf_append_be32(out, 1);
    for (size_t off = 0; !rc && off < in.n; off += XERIAL_BLOCK)
        rc = snappy_compress_block(in.p + off, TD_MIN(XERIAL_BLOCK, in.n - off), out);
    return rc;
}

static int snappy_raw_decompress(const uint8_t *p, size_t n, td_buf *out, size_t start,
                                 size_t max_out)
{
    size_t ulen;
    if (snappy_uncompressed_length((const char *)p, n, &ulen) != SNAPPY_OK)
        return td_fail(TD_ECORRUPT, "snappy data is corrupt");
    if (ulen > max_out - (out->len - start))
        return TD_ETOOBIG;
    /* At least one byte, so that out has storage even for an empty block (the encoding of
     * nothing is the single length byte 0): an empty td_buf's p is NULL, and NULL + len is
     * undefined even with len 0. */
    int rc = td_buf_reserve(out, TD_MAX(ulen, 1));
    if (rc)
        return rc;
    size_t got = ulen;
    if (snappy_uncompress((const char *)p, n, (char *)out->p + out->len, &got) != SNAPPY_OK ||
        got != ulen)
        return td_fail(TD_ECORRUPT, "snappy data is corrupt");
    out->len += got;
    return 0;
}

static int snappy_decompress_any(td_slice in, td_buf *out, size_t max_out)
{
    size_t start = out->len;
    if (in.n >= XERIAL_HEADER && memcmp(in.p, xerial_magic, 8) == 0) {
        size_t pos = XERIAL_HEADER;
        while (pos < in.n) {
            if (in.n - pos < 4)
                return td_fail(TD_ECORRUPT, "snappy (xerial) block length is truncated");
            uint32_t blen = td_load_be32(in.p + pos);
            pos += 4;
            if (blen > in.n - pos)
                return td_fail(TD_ECORRUPT, "snappy (xerial) block is truncated");
            int rc = snappy_raw_decompress(in.p + pos, blen, out, start, max_out);
            if (rc)
                return rc;
            pos += blen;
        }
        return 0;
    }
    return snappy_raw_decompress(in.p, in.n, out, start, max_out);
}

/* ---------------------------------------------------------------------------------------------
 * lz4 (frame format)
 */
static int lz4_compress(td_slice in, td_buf *out, int level)
{
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    prefs.compressionLevel = level;
    prefs.frameInfo.contentSize = in.n;
    size_t bound = LZ4F_compressFrameBound(in.n, &prefs);
    int rc = td_buf_reserve(out, bound);
    if (rc)
        return rc;
    size_t n = LZ4F_compressFrame(out->p + out->len, bound, in.p, in.n, &prefs);
    if (LZ4F_isError(n))
        return -ENOMEM;
    out->len += n;
    return 0;
}

static int lz4_decompress(td_slice in, td_buf *out, size_t max_out)
{
    LZ4F_dctx *ctx;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION)))
        return -ENOMEM;
    size_t start = out->len, pos = 0;
    int rc = 0;
    size_t hint = 1;
    while (hint != 0) {
        rc = grow(out, start, TD_MAX(in.n * 2, 65536), max_out);
        if (rc)
            break;
        size_t room = TD_MIN(out->cap - out->len, max_out - (out->len - start));
        size_t dst_n = room, src_n = in.n - pos;
        hint = LZ4F_decompress(ctx, out->p + out->len, &dst_n, in.p + pos, &src_n, NULL);
        if (LZ4F_isError(hint)) {
            rc = td_fail(TD_ECORRUPT, "lz4 data is corrupt: %s", LZ4F_getErrorName(hint));
            break;
        }
        out->len += dst_n;
        pos += src_n;
        if (hint != 0 && pos == in.n && dst_n == 0) {
            rc = td_fail(TD_ECORRUPT, "lz4 data is truncated");
            break;
        }
    }
    LZ4F_freeDecompressionContext(ctx);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * zstd
 */
static int zstd_compress(td_slice in, td_buf *out, int level)
{
    size_t bound = ZSTD_compressBound(in.n);
    int rc = td_buf_reserve(out, bound);
    if (rc)
        return rc;
    size_t n = ZSTD_compress(out->p + out->len, bound, in.p, in.n, level ? level : 3);
    if (ZSTD_isError(n))
        return -ENOMEM;
    out->len += n;
    return 0;
}

static int zstd_decompress(td_slice in, td_buf *out, size_t max_out)
{
    ZSTD_DStream *ds = ZSTD_createDStream();
    if (!ds)
        return -ENOMEM;
    size_t start = out->len;
    ZSTD_inBuffer ib = {in.p, in.n, 0};
    int rc = 0;
    size_t r = 1;
    while (r != 0) {
        rc = grow(out, start, TD_MAX(in.n * 2, 65536), max_out);
        if (rc)
            break;
        size_t room = TD_MIN(out->cap - out->len, max_out - (out->len - start));
        ZSTD_outBuffer ob = {out->p + out->len, room, 0};
        r = ZSTD_decompressStream(ds, &ob, &ib);
        if (ZSTD_isError(r)) {
            rc = td_fail(TD_ECORRUPT, "zstd data is corrupt: %s", ZSTD_getErrorName(r));
            break;
        }
        out->len += ob.pos;
        if (r != 0 && ib.pos == ib.size && ob.pos < ob.size) {
            rc = td_fail(TD_ECORRUPT, "zstd data is truncated");
            break;
        }
        /* A finished frame followed by more input: another frame. */
        if (r == 0 && ib.pos < ib.size)
            r = 1;
    }
    ZSTD_freeDStream(ds);
    return rc;
}

/* An empty slice may have a NULL p (td_slice_make(NULL, 0)); the codecs step through their input
 * with pointer arithmetic, which is undefined on NULL even by 0, so they get a real address. */
static const uint8_t no_bytes[1];

int td_compress(int codec, td_slice in, td_buf *out, int level)
{
    if (!in.p)
        in = td_slice_make(no_bytes, 0);
    switch (codec) {
    case TD_COMPRESS_NONE:
        return td_buf_append(out, in.p, in.n);
    case TD_COMPRESS_GZIP:
        return gzip_compress(in, out, level);
    case TD_COMPRESS_SNAPPY:
        return snappy_compress_xerial(in, out);
    case TD_COMPRESS_LZ4:
        return lz4_compress(in, out, level);
    case TD_COMPRESS_ZSTD:
        return zstd_compress(in, out, level);
    default:
        return td_fail(TD_EUNSUPPORTED, "unknown compression codec %d", codec);
    }
}

int td_decompress(int codec, td_slice in, td_buf *out, size_t max_out)
{
    size_t start = out->len;
    int rc;
    if (!in.p)
        in = td_slice_make(no_bytes, 0);
    switch (codec) {
    case TD_COMPRESS_NONE:
        if (in.n > max_out)
            return TD_ETOOBIG;
        return td_buf_append(out, in.p, in.n);
    case TD_COMPRESS_GZIP:
        rc = gzip_decompress(in, out, max_out);
        break;
    case TD_COMPRESS_SNAPPY:
        rc = snappy_decompress_any(in, out, max_out);
        break;
    case TD_COMPRESS_LZ4:
        rc = lz4_decompress(in, out, max_out);
        break;
    case TD_COMPRESS_ZSTD:
        rc = zstd_decompress(in, out, max_out);
        break;
    default:
        return td_fail(TD_EUNSUPPORTED, "unknown compression codec %d", codec);
    }
    if (rc == TD_ETOOBIG)
        td_fail(rc, "%s data decompresses to more than %zu bytes", td_compression_name(codec),
                max_out);
    if (rc)
        out->len = start;
    return rc;
}
