/*
 * partition.c: the partition calls of broker.h, through which the listeners (Kafka, Redis, HTTP)
 * append, read, trim and use stream IDs, so that storage's structures stay inside storage/ and
 * broker/ (docs/architecture.md "Layers"), and the topic name and configuration key facts they
 * print. Most are a call into storage/storage.h; the batch checks of a producer's records and the
 * encoding of a stream's events are done here.
 *
 * Costs: each call adds one function call and, for appends and reads, a copy of a few fields
 * between storage's structures and the broker's: about 18 instructions per append or read
 * (callgrind), against some 9 600 for a Kafka produce request of one 10-record batch and 5 600
 * for an XADD, which are unchanged within 1.5%.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "storage/storage.h"

_Static_assert((int)BROKER_SID_AUTO == (int)PART_SID_AUTO &&
                   (int)BROKER_SID_MS == (int)PART_SID_MS &&
                   (int)BROKER_SID_EXPLICIT == (int)PART_SID_EXPLICIT,
               "the broker's stream ID modes are storage's");

int broker_topic_config_type(const char *key)
{
    return topic_config_type(key);
}

const char *broker_topic_config_doc(const char *key)
{
    return topic_config_doc(key);
}

/* ---------------------------------------------------------------------------------------------
 * Offsets and state
 */
int64_t broker_part_log_start(td_part *p)
{
    return part_log_start(p);
}

int64_t broker_part_high_watermark(td_part *p)
{
    return part_high_watermark(p);
}

int64_t broker_part_last_stable(td_part *p)
{
    return part_last_stable(p);
}

int broker_part_aborted_txns(td_part *p, int64_t from, int64_t upper, broker_aborted_txn **out,
                             size_t *n)
{
    td_aborted_txn *v = NULL;
    size_t k = 0;
    int rc = part_aborted_txns(p, from, upper, &v, &k);
    *out = NULL;
    *n = 0;
    if (rc)
        return rc;
    broker_aborted_txn *w = k ? malloc(k * sizeof(*w)) : NULL;
    if (k && !w) {
        free(v);
        return -ENOMEM;
    }
    for (size_t i = 0; i < k; i++)
        w[i] = (broker_aborted_txn){v[i].pid, v[i].first};
    free(v);
    *out = w;
    *n = k;
    return 0;
}

const char *broker_part_offline(td_part *p)
{
    return part_offline(p);
}

int32_t broker_part_segments(td_part *p)
{
    td_part_stats st;
    part_stats(p, &st);
    return st.segments;
}

/* ---------------------------------------------------------------------------------------------
 * Appending
 */
static void result_of(const td_append_result *r, broker_append_result *out)
{
    out->base_offset = r->base_offset;
    out->last_offset = r->last_offset;
    out->log_append_time = r->log_append_time;
    out->end_offset = r->end_offset;
    out->duplicate = r->duplicate;
}

int broker_batches_check(uint8_t *p, size_t n, int32_t max_message_bytes, const char **why,
                         size_t *expects)
{
    size_t dummy = 0;
    if (!expects)
        expects = &dummy;
    *expects = 0;
    if (n == 0) {
        *why = "no record batch";
        return BROKER_BATCH_CORRUPT;
    }
    size_t off = 0;
    bool idempotent = false;
    while (off < n) {
        td_batch_header h;
        size_t left = n - off;
        if (left < TD_BATCH_HEADER_SIZE) {
            *why = "a truncated record batch";
            return BROKER_BATCH_CORRUPT;
        }
        if (p[off + 16] != TD_BATCH_MAGIC) {
            *why = "only record batch v2 (magic 2) is accepted";
            return BROKER_BATCH_OLD_FORMAT;
        }
        int rc = batch_validate(p + off, left, false, 0, &h);
        if (rc) {
            *why = rc == TD_ECRC ? "CRC mismatch" : "a corrupt record batch header";
            return BROKER_BATCH_CORRUPT;
        }
        if (max_message_bytes > 0 && batch_total_size(&h) > (size_t)max_message_bytes) {
            *why = "the batch is larger than max.message.bytes";
            return BROKER_BATCH_TOO_LARGE;
        }
        if (h.attributes & TD_BATCH_ATTR_CONTROL) {
            *why = "control batches cannot be produced";
            return BROKER_BATCH_INVALID;
        }
        if ((h.attributes & TD_BATCH_ATTR_TRANSACTIONAL) && h.producer_id < 0) {
            *why = "a transactional batch needs a producer id";
            return BROKER_BATCH_INVALID;
        }
        if (h.producer_id >= 0)
            idempotent = true;
        /* Several batches are accepted (Kafka takes one per partition) unless one of them is an
         * idempotent producer's: its sequence numbers name exactly one batch. */
        if (idempotent && off > 0) {
            *why = "an idempotent producer's records must be one batch per partition";
            return BROKER_BATCH_INVALID;
        }
        if (h.producer_id >= 0 && (h.producer_epoch < 0 || h.base_sequence < 0)) {
            *why = "a batch with a producer id needs an epoch and a sequence >= 0";
            return BROKER_BATCH_INVALID;
        }
        if (batch_compression(&h) > TD_COMPRESS_ZSTD) {
            *why = "unknown compression codec";
            return BROKER_BATCH_COMPRESSION;
        }
        rc = batch_validate_counting(
            p + off, batch_total_size(&h), (size_t)TD_MAX(max_message_bytes, 1 << 20) * 64,
            td_slice_make(BROKER_HEADER_PREFIX, sizeof(BROKER_HEADER_PREFIX) - 1), expects, NULL);
        if (rc) {
            *why = rc == TD_EUNSUPPORTED ? "unsupported compression" : "invalid records";
            return rc == TD_EUNSUPPORTED ? BROKER_BATCH_COMPRESSION : BROKER_BATCH_INVALID;
        }
        off += batch_total_size(&h);
    }
    return BROKER_BATCH_OK;
}

size_t broker_batch_size(const uint8_t *batch)
{
    return (size_t)td_load_be32(batch + 8) + TD_BATCH_LOG_OVERHEAD;
}

int broker_part_append_checked(td_part *p, uint8_t *batch, size_t n, int64_t now_ms,
                               broker_append_result *res)
{
    /* broker_batches_check validated the CRC and the records: the unchecked append does not
     * compute the CRC again, which costs as much as writing the batch. */
    td_append_result r = {0};
    int rc = part_append_unchecked(p, batch, n, now_ms, &r);
    result_of(&r, res);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Expected versions in record headers (docs/event-sourcing.md#kafka)
 */
int broker_expected_version_parse(const uint8_t *s, size_t n, int64_t *v)
{
    static const struct {
        const char *name;
        int64_t v;
    } names[] = {{"any", TD_VERSION_ANY},
                 {"no_stream", TD_VERSION_NO_STREAM},
                 {"exists", TD_VERSION_EXISTS}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (n == strlen(names[i].name) && memcmp(s, names[i].name, n) == 0) {
            *v = names[i].v;
            return 0;
        }
    if (n == 0 || n > 19)
        return TD_EINVAL;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return TD_EINVAL;
        int d = s[i] - '0';
        if (x > (INT64_MAX - d) / 10)
            return TD_EINVAL;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

int broker_condition_after_parse(const uint8_t *s, size_t n, int64_t *v)
{
    int64_t x;
    if (broker_expected_version_parse(s, n, &x) != 0 || x == TD_VERSION_ANY ||
        x == TD_VERSION_EXISTS)
        return TD_EINVAL;
    *v = x;
    return 0;
}

/* A key for a message: printable ASCII as is, other bytes as \xNN, at most about 100 bytes. */
static const char *key_text(const uint8_t *k, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        if (k[i] >= 0x20 && k[i] < 0x7f && k[i] != '\\' && k[i] != '\'')
            buf[o++] = (char)k[i];
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", k[i]);
        if (i + 1 < n && o + 8 >= cap) {
            memcpy(buf + o, "...", 4);
            return buf;
        }
    }
    buf[o] = '\0';
    return buf;
}

/* The header's value of record rec: 1 and *v when it has one, 0 when not, or TD_EINVAL. */
static int record_expectation(const td_record *rec, int64_t *v)
{
    static const size_t hl = sizeof(BROKER_EXPECT_HEADER) - 1;
    int found = 0;
    for (size_t h = 0; h < rec->header_count; h++) {
        const td_record_header *hd = &rec->headers[h];
        if (hd->key.n != hl || memcmp(hd->key.p, BROKER_EXPECT_HEADER, hl) != 0)
            continue;
        if (found)
            return td_fail(TD_EINVAL, "two " BROKER_EXPECT_HEADER " headers");
        if (hd->value_null || broker_expected_version_parse(hd->value.p, hd->value.n, v) != 0)
            return td_fail(TD_EINVAL,
                           BROKER_EXPECT_HEADER " must be \"any\", \"no_stream\", \"exists\" or "
                                                "an offset (decimal digits)");
        if (rec->key_null)
            return td_fail(TD_EINVAL, "an " BROKER_EXPECT_HEADER " header needs a record key");
        found = 1;
    }
    return found;
}

/* A batch's consistency boundary: its first record's condition headers. */
typedef struct kcond {
    td_slice keys[TD_CONDITION_KEYS_MAX];
    bool tag[TD_CONDITION_KEYS_MAX]; /* keys[j] is a tag (BROKER_COND_TAG_HEADER) */
    size_t n;
    bool has_after;
    int64_t after;
} kcond;

/* The condition headers of record rec, index i, into c: 0, or TD_EINVAL. */
static int record_condition(const td_record *rec, int32_t i, kcond *c)
{
    static const size_t kl = sizeof(BROKER_COND_KEY_HEADER) - 1;
    static const size_t al = sizeof(BROKER_COND_AFTER_HEADER) - 1;
    static const size_t tl = sizeof(BROKER_COND_TAG_HEADER) - 1;
    static const size_t gl = sizeof(TD_TAG_HEADER) - 1;
    size_t ntags = 0;
    for (size_t h = 0; h < rec->header_count; h++) {
        const td_record_header *hd = &rec->headers[h];
        bool is_tag = hd->key.n == tl && memcmp(hd->key.p, BROKER_COND_TAG_HEADER, tl) == 0;
        bool is_key =
            is_tag || (hd->key.n == kl && memcmp(hd->key.p, BROKER_COND_KEY_HEADER, kl) == 0);
        bool is_after = hd->key.n == al && memcmp(hd->key.p, BROKER_COND_AFTER_HEADER, al) == 0;
        if (hd->key.n == gl && memcmp(hd->key.p, TD_TAG_HEADER, gl) == 0) { /* the event's tag */
            if (hd->value_null || hd->value.n == 0 || hd->value.n > TD_TAG_MAX_LEN)
                return td_fail(TD_EINVAL, "a " TD_TAG_HEADER " has 1 to %d bytes",
                               TD_TAG_MAX_LEN);
            if (++ntags > TD_TAGS_MAX)
                return td_fail(TD_EINVAL, "a record has at most %d " TD_TAG_HEADER " headers",
                               TD_TAGS_MAX);
        }
        if (!is_key && !is_after)
            continue;
        if (i > 0)
            return td_fail(TD_EINVAL, "tidings-condition-* headers belong on the first record of "
                                      "the batch");
        if (is_key && hd->value_null)
            return td_fail(TD_EINVAL, "%s must not be null",
                           is_tag ? BROKER_COND_TAG_HEADER : BROKER_COND_KEY_HEADER);
        if (is_tag && (hd->value.n == 0 || hd->value.n > TD_TAG_MAX_LEN))
            return td_fail(TD_EINVAL, BROKER_COND_TAG_HEADER " has 1 to %d bytes", TD_TAG_MAX_LEN);
        if (is_key && c->n == TD_CONDITION_KEYS_MAX)
            return td_fail(TD_EINVAL, "a condition has at most %d keys and tags",
                           TD_CONDITION_KEYS_MAX);
        if (is_key) {
            c->tag[c->n] = is_tag;
            c->keys[c->n++] = hd->value;
        }
        if (is_after && c->has_after)
            return td_fail(TD_EINVAL, "two " BROKER_COND_AFTER_HEADER " headers");
        if (is_after && (hd->value_null ||
                         broker_condition_after_parse(hd->value.p, hd->value.n, &c->after) != 0))
            return td_fail(TD_EINVAL, BROKER_COND_AFTER_HEADER " must be \"no_stream\" or an "
                                                               "offset (decimal digits)");
        c->has_after |= is_after;
    }
    if (i == 0 && (c->n > 0) != c->has_after)
        return td_fail(TD_EINVAL,
                       "a condition needs " BROKER_COND_KEY_HEADER " or " BROKER_COND_TAG_HEADER
                       " headers (1 to %d) and one " BROKER_COND_AFTER_HEADER " header",
                       TD_CONDITION_KEYS_MAX);
    return 0;
}

/* The conditions of the batch's records into req (keys into the batch or rd's buffer; req->keys
 * malloc'd), *idx the record index of each; then the keys of its first record's condition
 * (cond, index 0). 0 (req->n 0 when none), or an error with *bad. */
static int collect_expectations(td_batch_reader *rd, const uint8_t *batch, size_t n,
                                int32_t max_message_bytes, part_expect *req, int32_t **idx,
                                kcond *cond, int32_t *bad)
{
    int rc = batch_reader_open(rd, batch, n, (size_t)TD_MAX(max_message_bytes, 1 << 20) * 64);
    if (rc)
        return rc;
    size_t cap = 0;
    td_record rec;
    for (int32_t i = 0; (rc = batch_reader_next(rd, &rec)) == 1; i++) {
        int64_t v;
        int got = record_expectation(&rec, &v);
        if (got >= 0 && (rc = record_condition(&rec, i, cond)) != 0)
            got = rc;
        if (got < 0) {
            *bad = i;
            return got;
        }
        if (!got || v == TD_VERSION_ANY)
            continue;
        if (req->n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            part_expect_key *k = realloc(req->keys, nc * sizeof(*k));
            int32_t *x = k ? realloc(*idx, nc * sizeof(*x)) : NULL;
            if (k)
                req->keys = k;
            if (!x)
                return -ENOMEM;
            *idx = x;
            cap = nc;
        }
        (*idx)[req->n] = i;
        req->keys[req->n++] = (part_expect_key){rec.key.p, rec.key.n, v, false, 0, 0, false};
    }
    if (rc == 0 && cond->n) { /* the condition's keys, after the records' */
        part_expect_key *k = realloc(req->keys, (req->n + cond->n) * sizeof(*k));
        int32_t *x = k ? realloc(*idx, (req->n + cond->n) * sizeof(*x)) : NULL;
        if (k)
            req->keys = k;
        if (!x)
            return -ENOMEM;
        *idx = x;
    }
    for (size_t j = 0; rc == 0 && j < cond->n; j++) {
        (*idx)[req->n] = 0;
        req->keys[req->n++] =
            (part_expect_key){cond->keys[j].p, cond->keys[j].n, cond->after, true, 0, 0,
                              cond->tag[j]};
    }
    return rc;
}

int broker_part_append_expect(td_part *p, uint8_t *batch, size_t n, int32_t max_message_bytes,
                              int64_t now_ms, broker_append_result *res, int32_t *bad_record)
{
    *bad_record = -1;
    td_batch_reader rd;
    batch_reader_init(&rd);
    part_expect req = {0};
    int32_t *idx = NULL;
    kcond cond = {.n = 0};
    int rc = collect_expectations(&rd, batch, n, max_message_bytes, &req, &idx, &cond, bad_record);
    if (rc < 0 && *bad_record >= 0) {
        char m[300];
        snprintf(m, sizeof(m), "record %" PRId32 ": %s", *bad_record, td_last_error());
        rc = td_fail(rc, "%s", m);
    } else if (rc == 0 && req.n == 0) {
        rc = broker_part_append_checked(p, batch, n, now_ms, res);
    } else if (rc == 0) {
        td_append_result r = {0};
        rc = part_append_expect(p, batch, n, now_ms, &r, &req);
        result_of(&r, res);
        if (rc == TD_EUNSUPPORTED) {
            *bad_record = idx[0];
            rc = td_fail(rc,
                         "record %" PRId32 ": an %s header needs a topic with key.index=true "
                         "(docs/event-sourcing.md)",
                         idx[0],
                         req.n > cond.n || !cond.n ? BROKER_EXPECT_HEADER : BROKER_COND_KEY_HEADER);
        } else if (rc == TD_EVERSION && req.failed >= req.n - cond.n) {
            size_t j = req.failed - (req.n - cond.n);
            part_expect_key *k = &req.keys[req.failed];
            char kb[128], xb[24], cb[24];
            size_t nth = 0; /* among the condition's keys, or its tags */
            for (size_t i = 0; i < j; i++)
                nth += cond.tag[i] == cond.tag[j];
            *bad_record = 0;
            rc = td_fail(rc,
                         "record 0: condition %s %zu '%s': the %s version %s is after the "
                         "position %s",
                         k->tag ? "tag" : "key", nth, key_text(k->key, k->key_len, kb, sizeof(kb)),
                         k->tag ? "tag's" : "stream's",
                         td_version_text(k->current, cb, sizeof(cb)),
                         td_version_text(k->expected, xb, sizeof(xb)));
        } else if (rc == TD_EVERSION) {
            part_expect_key *k = &req.keys[req.failed];
            char kb[128], xb[24], cb[24];
            *bad_record = idx[req.failed];
            rc = td_fail(rc,
                         "record %" PRId32 ": key '%s': expected version %s, but the stream's "
                         "version is %s",
                         idx[req.failed], key_text(k->key, k->key_len, kb, sizeof(kb)),
                         td_version_text(k->expected, xb, sizeof(xb)),
                         td_version_text(k->current, cb, sizeof(cb)));
        }
    }
    free(req.keys);
    free(idx);
    batch_reader_free(&rd);
    return rc;
}

int broker_part_wait_durable(td_part *p, int64_t end)
{
    return part_wait_durable(p, end);
}

/* ---------------------------------------------------------------------------------------------
 * Reading and trimming
 */
int broker_part_read(td_part *p, int64_t offset, size_t max_bytes, broker_range *r)
{
    return broker_part_read_to(p, offset, max_bytes, INT64_MAX, r);
}

int broker_part_read_to(td_part *p, int64_t offset, size_t max_bytes, int64_t limit,
                        broker_range *r)
{
    td_range tr;
    int rc = part_read_to(p, offset, max_bytes, limit, &tr);
    *r = (broker_range){.fd = tr.fd,
                        .pos = tr.pos,
                        .len = tr.len,
                        .first_offset = tr.first_offset,
                        .next_offset = tr.next_offset,
                        .hold = rc == 0 ? tr.seg : NULL};
    return rc;
}

void broker_range_release(broker_range *r)
{
    /* part_range_release needs only the segment it holds. */
    td_range tr = {.seg = r->hold, .fd = -1};
    part_range_release(&tr);
    r->hold = NULL;
}

int broker_part_offset_for_time(td_part *p, int64_t ts, int64_t *offset)
{
    return part_offset_for_time(p, ts, offset);
}

int broker_part_max_timestamp(td_part *p, int64_t *ts, int64_t *offset)
{
    return part_max_timestamp(p, ts, offset);
}

int broker_part_count_records(td_part *p, int64_t from, int64_t to, int64_t *n)
{
    return part_count_records(p, from, to, n);
}

bool broker_part_has_gaps(td_part *p)
{
    return part_has_gaps(p);
}

int broker_part_record_offsets(td_part *p, int64_t from, int64_t to, size_t max, int64_t **out,
                               size_t *n)
{
    return part_record_offsets(p, from, to, max, out, n);
}

int broker_part_delete_before(td_part *p, int64_t offset, int64_t *log_start)
{
    return part_delete_before(p, offset, log_start);
}

int broker_part_nodes_read(td_part *p, uint8_t **out, size_t *n)
{
    return part_nodes_read(p, out, n);
}

int broker_part_nodes_append(td_part *p, const void *b, size_t n, bool sync)
{
    return part_nodes_append(p, b, n, sync);
}

int broker_part_nodes_rewrite(td_part *p, const void *b, size_t n)
{
    return part_nodes_rewrite(p, b, n);
}

/* ---------------------------------------------------------------------------------------------
 * Streams
 */
int broker_stream_append(td_part *p, const td_event *events, size_t n, int64_t now_ms,
                         broker_sid_req *req, broker_append_result *res)
{
    td_buf batch;
    td_buf_init(&batch);
    td_batch_encode_opts bo;
    batch_encode_opts_init(&bo);
    int rc = batch_encode(&batch, &bo, events, n);
    part_sid_req sr = {req->mode, req->want, {0, 0}};
    td_append_result r = {0};
    if (rc == 0)
        rc = part_append_sid(p, batch.p, batch.len, now_ms, &r, &sr);
    td_buf_free(&batch);
    req->got = sr.got;
    result_of(&r, res);
    return rc;
}

int broker_stream_id(td_part *p, int64_t offset, td_sid *id, int64_t *run_end)
{
    return part_stream_id(p, offset, id, run_end);
}

int broker_stream_seek(td_part *p, td_sid id, int64_t from, int64_t to, int64_t *offset)
{
    return part_stream_seek(p, id, from, to, offset);
}

int broker_stream_find(td_part *p, td_sid id, int64_t *offset)
{
    return part_stream_find(p, id, offset);
}

int broker_stream_after(td_part *p, td_sid id, int64_t *offset)
{
    return part_stream_after(p, id, offset);
}

int broker_stream_last(td_part *p, td_sid *last)
{
    return part_stream_last(p, last);
}

int broker_stream_top(td_part *p, td_sid *top)
{
    return part_stream_top(p, top);
}

int broker_stream_set_last(td_part *p, td_sid last)
{
    return part_stream_set_last(p, last);
}

int broker_stream_xsetid(td_part *p, td_sid last, int64_t added, int64_t *at)
{
    return part_stream_xsetid(p, last, added, at);
}

uint64_t broker_stream_added(td_part *p, int64_t hw)
{
    return part_stream_added(p, hw);
}
