/*
 * state.c: the internal state topics (see state.h and docs/storage.md, "State topics").
 *
 * The engine keeps one reference on each state topic for its whole life, so that appends reach
 * the partitions without looking the topic up; the topics cannot be deleted or grown by
 * clients (engine.c refuses it), so the partition count seen here never changes while open.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "broker/broker.h"
#include "broker/engine_int.h"
#include "broker/state.h"
#include "storage/batch.h"

static const char *const topic_names[STATE_NTOPICS] = {STATE_OFFSETS_TOPIC, STATE_CLUSTER_TOPIC,
                                                       STATE_QUEUES_TOPIC,  STATE_XGROUPS_TOPIC,
                                                       STATE_SCHEMAS_TOPIC, STATE_TXNS_TOPIC};

struct td_state {
    td_topic_ref *ref[STATE_NTOPICS];
};

bool state_topic_internal(const char *name)
{
    if (!name || name[0] != '_' || name[1] != '_')
        return false;
    for (int i = 0; i < STATE_NTOPICS; i++)
        if (strcmp(name, topic_names[i]) == 0)
            return true;
    return false;
}

/* ---------------------------------------------------------------------------------------------
 * Record fields
 */
int state_put16(td_buf *b, int16_t v)
{
    return td_buf_append_be16(b, (uint16_t)v);
}

int state_put32(td_buf *b, int32_t v)
{
    return td_buf_append_be32(b, (uint32_t)v);
}

int state_put64(td_buf *b, int64_t v)
{
    return td_buf_append_be64(b, (uint64_t)v);
}

int state_put_str(td_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > INT16_MAX)
        return td_fail(TD_ETOOBIG, "a state record string is above %d bytes", INT16_MAX);
    int rc = state_put16(b, s ? (int16_t)n : -1);
    return rc ? rc : n ? td_buf_append(b, s, n) : 0;
}

static bool need(state_reader *r, size_t n)
{
    if (r->bad || r->n - r->pos < n) {
        r->bad = true;
        return false;
    }
    return true;
}

int16_t state_get16(state_reader *r)
{
    if (!need(r, 2))
        return 0;
    int16_t v = (int16_t)(((uint16_t)r->p[r->pos] << 8) | r->p[r->pos + 1]);
    r->pos += 2;
    return v;
}

int32_t state_get32(state_reader *r)
{
    if (!need(r, 4))
        return 0;
    int32_t v = (int32_t)td_load_be32(r->p + r->pos);
    r->pos += 4;
    return v;
}

int64_t state_get64(state_reader *r)
{
    if (!need(r, 8))
        return 0;
    int64_t v = (int64_t)td_load_be64(r->p + r->pos);
    r->pos += 8;
    return v;
}

char *state_get_str(state_reader *r)
{
    int16_t n = state_get16(r);
    if (r->bad || n < 0) {
        if (n < -1)
            r->bad = true;
        return NULL;
    }
    if (!need(r, (size_t)n))
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) {
        r->bad = true;
        return NULL;
    }
    memcpy(s, r->p + r->pos, (size_t)n);
    s[n] = '\0';
    r->pos += (size_t)n;
    return s;
}

/* ---------------------------------------------------------------------------------------------
 * Partitioning: Kafka's GroupMetadataManager.partitionFor, Utils.abs(groupId.hashCode) % n,
 * where hashCode is Java's String.hashCode over UTF-16 code units.
 */
static int32_t java_string_hash(const char *s)
{
    uint32_t h = 0;
    const uint8_t *p = (const uint8_t *)s;
    while (*p) {
        uint32_t cp;
        int len;
        if (p[0] < 0x80) {
            cp = p[0];
            len = 1;
        } else if ((p[0] & 0xe0) == 0xc0 && (p[1] & 0xc0) == 0x80) {
            cp = ((p[0] & 0x1fu) << 6) | (p[1] & 0x3fu);
            len = 2;
        } else if ((p[0] & 0xf0) == 0xe0 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80) {
            cp = ((p[0] & 0x0fu) << 12) | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu);
            len = 3;
        } else if ((p[0] & 0xf8) == 0xf0 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 &&
                   (p[3] & 0xc0) == 0x80) {
            cp = ((p[0] & 0x07u) << 18) | ((p[1] & 0x3fu) << 12) | ((p[2] & 0x3fu) << 6) |
                 (p[3] & 0x3fu);
            len = 4;
        } else {
            cp = 0xfffd; /* what Java decodes a malformed byte to */
            len = 1;
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            h = h * 31 + (0xd800 + (cp >> 10));
            h = h * 31 + (0xdc00 + (cp & 0x3ff));
        } else {
            h = h * 31 + cp;
        }
        p += len;
    }
    return (int32_t)h;
}

int32_t state_partition_for(td_engine *e, state_topic_id which, const char *id)
{
    int32_t n = state_partitions(e, which);
    int32_t h = java_string_hash(id ? id : "");
    int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h); /* Kafka's Utils.abs */
    return n > 0 ? a % n : 0;
}

int32_t state_partitions(td_engine *e, state_topic_id which)
{
    return e->state && e->state->ref[which] ? broker_topic_partitions(e->state->ref[which]) : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Appends and durability
 */
static td_part *state_part(td_engine *e, state_topic_id which, int32_t partition)
{
    if (!e->state || (unsigned)which >= STATE_NTOPICS || !e->state->ref[which])
        return NULL;
    return broker_topic_part(e->state->ref[which], partition);
}

int state_append(td_engine *e, state_topic_id which, int32_t partition, const td_event *events,
                 size_t n, int64_t *end)
{
    td_part *p = state_part(e, which, partition);
    if (!p)
        return td_fail(TD_ENOTFOUND, "no state topic partition %d/%" PRId32, (int)which, partition);
    if (n == 0) {
        *end = part_high_watermark(p);
        return 0;
    }
    int64_t now = td_wall_ms();
    td_event *v = malloc(n * sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        v[i] = events[i];
        v[i].timestamp_ms = now;
    }
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    td_buf b;
    td_buf_init(&b);
    int rc = batch_encode(&b, &o, v, n);
    td_append_result ar;
    if (rc == 0)
        rc = part_append_unchecked(p, b.p, b.len, now, &ar); /* just encoded */
    if (rc == 0)
        *end = ar.end_offset; /* the partition counts the append in the topic's metrics */
    td_buf_free(&b);
    free(v);
    return rc;
}

int64_t state_log_end(td_engine *e, state_topic_id which, int32_t partition)
{
    td_part *p = state_part(e, which, partition);
    return p ? part_log_end(p) : -1;
}

int state_wait(td_engine *e, state_topic_id which, int32_t partition, int64_t end)
{
    td_part *p = state_part(e, which, partition);
    return p ? part_wait_durable(p, end) : td_fail(TD_ENOTFOUND, "no state topic partition");
}

int state_wait_solo(td_engine *e, state_topic_id which, int32_t partition, int64_t end)
{
    td_part *p = state_part(e, which, partition);
    return p ? part_wait_durable_solo(p, end) : td_fail(TD_ENOTFOUND, "no state topic partition");
}

int state_when_durable(td_engine *e, state_topic_id which, int32_t partition, int64_t end,
                       td_durable_cb cb, void *arg)
{
    if (!state_part(e, which, partition))
        return td_fail(TD_ENOTFOUND, "no state topic partition");
    return broker_when_durable(e->state->ref[which], partition, end, cb, arg);
}

/* ---------------------------------------------------------------------------------------------
 * Replay
 */
int state_replay(td_engine *e, state_topic_id which, state_replay_fn fn, void *arg)
{
    int32_t n = state_partitions(e, which);
    int rc = 0;
    for (int32_t p = 0; p < n && rc == 0; p++) {
        td_iter *it;
        if ((rc = td_iter_open(e, topic_names[which], p, TD_OFFSET_EARLIEST, &it)) != 0)
            break;
        td_event ev;
        int r;
        while ((r = td_iter_next(it, &ev)) == 1)
            if ((rc = fn(arg, p, &ev)) != 0)
                break;
        if (r < 0 && rc == 0)
            rc = r;
        td_iter_close(it);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Open and close
 */
static int ensure_topic(td_engine *e, state_topic_id which)
{
    const char *name = topic_names[which];
    const char *fsync = e->opts.state_topic_fsync[0] ? e->opts.state_topic_fsync : "always";
    td_topic_info info;
    int rc = td_topic_describe(e, name, &info);
    if (rc == TD_ENOTFOUND) {
        int32_t parts = 1;
        if (which == STATE_OFFSETS && e->opts.offsets_topic_partitions > 0)
            parts = e->opts.offsets_topic_partitions;
        td_config_entry cfg[] = {{"cleanup.policy", "compact"},
                                 {"fsync", fsync},
                                 /* Kafka's segment size for __consumer_offsets: small
                                  * segments let the cleaner keep the state topics small. */
                                 {"segment.bytes", "104857600"}};
        rc = td_topic_create(e, name, parts, cfg, sizeof(cfg) / sizeof(cfg[0]));
        if (rc == 0)
            TD_INFO("state", "created internal topic %s with %" PRId32 " partition%s", name, parts,
                    parts == 1 ? "" : "s");
        return rc;
    }
    if (rc)
        return rc;
    /* A setting given applies at every start; without one the topic keeps its own (always, or
     * what an earlier start set): a local command that opens the directory changes nothing. */
    td_config_entry cfg[] = {{"cleanup.policy", "compact"}, {"fsync", fsync}};
    if (!(info.config.cleanup_policy & TD_CLEANUP_COMPACT) || e->opts.state_topic_fsync[0])
        return td_topic_alter(e, name, cfg, e->opts.state_topic_fsync[0] ? 2 : 1);
    return 0;
}

int state_open(td_engine *e)
{
    struct td_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    int rc = 0;
    for (int i = 0; i < STATE_NTOPICS && rc == 0; i++) {
        if ((rc = ensure_topic(e, (state_topic_id)i)) == 0)
            rc = broker_topic_acquire(e, topic_names[i], &st->ref[i]);
    }
    e->state = st;
    if (rc == 0)
        rc = pid_state_open(e);
    if (rc == 0)
        rc = gstate_open(e);
    /* Both modules hold what the catalog held, durably: its rows go in one transaction. */
    bool had = false;
    if (rc == 0 && (rc = catalog_state_migrated(e->cat, &had)) == 0 && had)
        TD_INFO("state", "dropped the migrated offsets and producer id from the catalog");
    if (rc)
        TD_ERROR("state", "cannot open the state topics: %s", td_last_error());
    return rc;
}

void state_close(td_engine *e)
{
    struct td_state *st = e->state;
    if (!st)
        return;
    gstate_close(e);
    for (int i = 0; i < STATE_NTOPICS; i++)
        if (st->ref[i])
            broker_topic_release(st->ref[i]);
    free(st);
    e->state = NULL;
}
