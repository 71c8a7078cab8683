/*
 * pid_state.c: producer ids for idempotent producers, reserved in blocks recorded in the
 * internal topic __cluster_state (state.h), as Kafka's ProducerIdManager reserves blocks in its
 * metadata log: a block is durable before any id of it is handed out, so that no id is handed
 * out twice across restarts; ids of a block unused at a restart are skipped, never reused.
 *
 * Record (docs/storage.md "State topics"):
 *   key   int16 0 (ProducerIdBlockKey; no fields: one key, so compaction keeps the last block)
 *   value int16 0, int64 first id of the block, int32 ids in the block
 * Replay keeps the last block; the next block starts where it ends.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>

#include "base/base.h"
#include "broker/broker.h"
#include "broker/engine_int.h"
#include "broker/state.h"

#define KEY_PRODUCER_ID_BLOCK 0
#define PID_BLOCK 1000

/* Writes the block [first, first + count) and waits until it is durable. */
static int write_block(td_engine *e, int64_t first, int32_t count)
{
    td_buf k, v;
    td_buf_init(&k);
    td_buf_init(&v);
    int rc = state_put16(&k, KEY_PRODUCER_ID_BLOCK) | state_put16(&v, 0) | state_put64(&v, first) |
             state_put32(&v, count);
    int64_t end;
    if (rc)
        rc = -ENOMEM;
    td_event ev = {.key = k.p, .key_len = k.len, .value = v.p, .value_len = v.len};
    if (rc == 0)
        rc = state_append(e, STATE_CLUSTER, 0, &ev, 1, &end);
    if (rc == 0)
        rc = state_wait(e, STATE_CLUSTER, 0, end);
    td_buf_free(&k);
    td_buf_free(&v);
    return rc;
}

int broker_producer_id_new(td_engine *e, int64_t *pid)
{
    int rc = 0;
    pthread_mutex_lock(&e->pid_mu);
    if (e->pid_next >= e->pid_limit) {
        int64_t first = e->pid_limit;
        if (first > INT64_MAX - PID_BLOCK)
            rc = td_fail(TD_EFULL, "producer ids are exhausted");
        else
            rc = write_block(e, first, PID_BLOCK);
        if (rc == 0) {
            e->pid_next = first;
            e->pid_limit = first + PID_BLOCK;
        }
    }
    if (rc == 0)
        *pid = e->pid_next++;
    pthread_mutex_unlock(&e->pid_mu);
    return rc;
}

static int replay_record(void *arg, int32_t partition, const td_event *ev)
{
    td_engine *e = arg;
    (void)partition;
    if (!ev->key || !ev->value)
        return 0;
    state_reader k = {.p = ev->key, .n = ev->key_len};
    if (state_get16(&k) != KEY_PRODUCER_ID_BLOCK || k.bad)
        return 0; /* another kind of record */
    state_reader v = {.p = ev->value, .n = ev->value_len};
    (void)state_get16(&v); /* version 0; later versions append fields */
    int64_t first = state_get64(&v);
    int32_t count = state_get32(&v);
    if (v.bad || first < 0 || count < 0 || first > INT64_MAX - count) {
        TD_WARN("state", "skipping a malformed producer-id block at %s offset %" PRId64,
                STATE_CLUSTER_TOPIC, ev->offset);
        return 0;
    }
    /* Blocks only grow; the largest end is the next block's start whatever the order. */
    if (first + count > e->pid_limit)
        e->pid_limit = first + count;
    e->pid_next = e->pid_limit;
    return 0;
}

int pid_state_open(td_engine *e)
{
    e->pid_next = e->pid_limit = 0;
    int rc = state_replay(e, STATE_CLUSTER, replay_record, e);
    int64_t legacy = 0;
    if (rc == 0 && (rc = catalog_producer_ids_legacy(e->cat, &legacy)) == 0 &&
        legacy > e->pid_limit) {
        /* An older directory's catalog: every id below `legacy` may have been handed out. An
         * empty block at `legacy` records that, durably, before the catalog row goes. */
        if ((rc = write_block(e, legacy, 0)) == 0) {
            e->pid_next = e->pid_limit = legacy;
            TD_INFO("state", "migrated the next producer id (%" PRId64 ") to %s", legacy,
                    STATE_CLUSTER_TOPIC);
        }
    }
    return rc;
}
