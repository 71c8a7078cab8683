/* cleancheck.c: see cleancheck.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/cleancheck.h"

void cc_model_init(cc_model *m)
{
    for (int i = 0; i < CC_KEYS_MAX; i++)
        m->gen[i] = CC_ABSENT;
    m->next_gen = 1;
}

int cc_append(td_part *p, cc_model *m, const int *keys, const bool *tomb, int n, int64_t ts,
              int codec, int64_t pid, int32_t seq, td_append_result *res)
{
    td_event *ev = calloc((size_t)n, sizeof(*ev));
    char(*kb)[16] = calloc((size_t)n, sizeof(*kb));
    char(*vb)[48] = calloc((size_t)n, sizeof(*vb));
    int64_t *gens = calloc((size_t)n, sizeof(*gens));
    int rc = ev && kb && vb && gens ? 0 : -1;
    for (int i = 0; rc == 0 && i < n; i++) {
        snprintf(kb[i], sizeof(kb[i]), "k%d", keys[i]);
        gens[i] = m->next_gen++;
        snprintf(vb[i], sizeof(vb[i]), "k%d-g%" PRId64, keys[i], gens[i]);
        bool t = tomb && tomb[i];
        ev[i] = (td_event){.key = kb[i],
                           .key_len = strlen(kb[i]),
                           .value = t ? NULL : vb[i],
                           .value_len = t ? 0 : strlen(vb[i]),
                           .timestamp_ms = ts};
    }
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    o.compression = codec;
    if (pid >= 0) {
        o.producer_id = pid;
        o.producer_epoch = 0;
        o.base_sequence = seq;
    }
    td_buf b;
    td_buf_init(&b);
    if (rc == 0)
        rc = batch_encode(&b, &o, ev, (size_t)n);
    td_append_result r;
    if (rc == 0)
        rc = part_append(p, b.p, b.len, ts, res ? res : &r);
    for (int i = 0; rc == 0 && i < n; i++)
        m->gen[keys[i]] = tomb && tomb[i] ? CC_TOMBSTONE : gens[i];
    td_buf_free(&b);
    free(ev);
    free(kb);
    free(vb);
    free(gens);
    return rc;
}

/* Parses one record of a records area, accepting offset gaps; returns its end or 0. */
static size_t parse_rec(const uint8_t *p, size_t n, size_t pos, int32_t *off_delta, td_slice *key,
                        td_slice *val, bool *val_null)
{
    int32_t len, kl, vl;
    int64_t tsd;
    int k = td_varint_decode(p + pos, n - pos, &len);
    if (k <= 0 || len < 6 || (size_t)len > n - pos - (size_t)k)
        return 0;
    size_t end = pos + (size_t)k + (size_t)len, c = pos + (size_t)k + 1;
    if ((k = td_varlong_decode(p + c, end - c, &tsd)) <= 0)
        return 0;
    c += (size_t)k;
    if ((k = td_varint_decode(p + c, end - c, off_delta)) <= 0)
        return 0;
    c += (size_t)k;
    if ((k = td_varint_decode(p + c, end - c, &kl)) <= 0 || kl < 0 || (size_t)kl > end - c - 1)
        return 0;
    c += (size_t)k;
    *key = td_slice_make(p + c, (size_t)kl);
    c += (size_t)kl;
    if ((k = td_varint_decode(p + c, end - c, &vl)) <= 0 || vl < -1)
        return 0;
    c += (size_t)k;
    *val_null = vl < 0;
    if (vl > 0 && (size_t)vl > end - c)
        return 0;
    *val = td_slice_make(p + c, vl < 0 ? 0 : (size_t)vl);
    return end;
}

static int64_t *offs_out, offs_cap;

int64_t cc_read_offsets(td_part *p, int64_t *offs, int64_t cap)
{
    int64_t *seen = malloc(CC_KEYS_MAX * sizeof(*seen));
    offs_out = offs;
    offs_cap = cap;
    int64_t n = seen ? cc_read(p, seen) : -1;
    offs_out = NULL;
    free(seen);
    return n;
}

int64_t cc_read(td_part *p, int64_t *seen)
{
    for (int i = 0; i < CC_KEYS_MAX; i++)
        seen[i] = CC_ABSENT;
    int64_t off = part_log_start(p), last = -1, count = 0;
    td_buf b, area;
    td_buf_init(&b);
    td_buf_init(&area);
    int rc = 0;
    while (rc == 0) {
        td_range r;
        rc = part_read(p, off, 1 << 20, &r);
        if (rc == TD_EEND) {
            if (getenv("CC_DEBUG"))
                fprintf(stderr, "cc_read: end at %" PRId64 " hw %" PRId64 "\n", off,
                        part_high_watermark(p));
            rc = 0;
            break;
        }
        if (rc) {
            fprintf(stderr, "cc_read: part_read at %" PRId64 ": %s %s\n", off, td_strerror(rc),
                    td_last_error());
            break;
        }
        td_buf_reset(&b);
        rc = part_range_copy(&r, &b);
        part_range_release(&r);
        size_t pos = 0;
        while (rc == 0 && pos < b.len) {
            td_batch_header h;
            if (batch_validate(b.p + pos, b.len - pos, false, 0, &h) != 0) {
                fprintf(stderr, "cc_read: invalid batch at offset %" PRId64 "\n", off);
                rc = -1;
                break;
            }
            const uint8_t *recs = b.p + pos + TD_BATCH_HEADER_SIZE;
            size_t rn = batch_total_size(&h) - TD_BATCH_HEADER_SIZE;
            if (batch_compression(&h)) {
                td_buf_reset(&area);
                if (td_decompress(batch_compression(&h), td_slice_make(recs, rn), &area,
                                  64u << 20) != 0) {
                    rc = -1;
                    break;
                }
                recs = area.p;
                rn = area.len;
            }
            size_t rp = 0;
            for (int32_t i = 0; i < h.record_count; i++) {
                int32_t od;
                td_slice key, val;
                bool vnull;
                size_t e = parse_rec(recs, rn, rp, &od, &key, &val, &vnull);
                int64_t o = h.base_offset + od;
                if (!e || o <= last || od > h.last_offset_delta) {
                    fprintf(stderr, "cc_read: bad record at offset %" PRId64 "\n", o);
                    rc = -1;
                    break;
                }
                rp = e;
                last = o;
                if (offs_out && count < offs_cap)
                    offs_out[count] = o;
                count++;
                char ks[32];
                snprintf(ks, sizeof(ks), "%.*s", (int)TD_MIN(key.n, 30), (const char *)key.p);
                int ki = ks[0] == 'k' ? atoi(ks + 1) : -1;
                if (ki < 0 || ki >= CC_KEYS_MAX) {
                    rc = -1;
                    break;
                }
                if (vnull) {
                    seen[ki] = CC_TOMBSTONE;
                } else {
                    char vs[64];
                    snprintf(vs, sizeof(vs), "%.*s", (int)TD_MIN(val.n, 60), (const char *)val.p);
                    const char *g = strstr(vs, "-g");
                    seen[ki] = g ? atoll(g + 2) : CC_ABSENT;
                }
            }
            if (rc == 0 && rp != rn) {
                fprintf(stderr, "cc_read: bytes after the last record\n");
                rc = -1;
            }
            pos += batch_total_size(&h);
        }
        off = r.next_offset;
    }
    td_buf_free(&b);
    td_buf_free(&area);
    return rc ? -1 : count;
}

int64_t cc_check(td_part *p, const cc_model *m, bool gone_ok)
{
    int64_t *seen = malloc(CC_KEYS_MAX * sizeof(*seen));
    if (!seen)
        return -1;
    int64_t n = cc_read(p, seen);
    for (int k = 0; n >= 0 && k < CC_KEYS_MAX; k++) {
        bool ok =
            seen[k] == m->gen[k] || (gone_ok && m->gen[k] == CC_TOMBSTONE && seen[k] == CC_ABSENT);
        if (!ok) {
            fprintf(stderr, "cc_check: key k%d holds %" PRId64 ", expected %" PRId64 "\n", k,
                    seen[k], m->gen[k]);
            n = -1;
        }
    }
    free(seen);
    return n;
}
