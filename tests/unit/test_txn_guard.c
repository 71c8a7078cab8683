/* Unit tests for the transaction coordinator's VerificationGuard (broker/txn.c, KIP-890): a
 * transactional batch verified against the coordinator just before its transaction ends is
 * appended before the transaction's marker, never after it (where it would open a transaction
 * in the partition that nothing ends); a batch verified after the end is refused; and a
 * refused verification holds nothing back. The coordinator is driven through its broker calls,
 * as the Kafka listener drives it, and the batches appended as Kafka's produce appends them. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/broker.h"
#include "broker/txn.h"
#include "storage/batch.h"
#include "storage/storage.h"
#include "test.h"

/* A coordinator call's answer, waited for. */
typedef struct answer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    txn_err err;
    int64_t pid;
    int16_t epoch;
} answer;

static void answer_init(answer *a)
{
    memset(a, 0, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
}

static void on_done(void *arg, txn_err err, int64_t pid, int16_t epoch)
{
    answer *a = arg;
    pthread_mutex_lock(&a->mu);
    a->err = err;
    a->pid = pid;
    a->epoch = epoch;
    a->done = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static txn_err wait_answer(answer *a)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 20;
    pthread_mutex_lock(&a->mu);
    while (!a->done)
        ASSERT_EQ(pthread_cond_timedwait(&a->cv, &a->mu, &ts), 0);
    a->done = false;
    pthread_mutex_unlock(&a->mu);
    return a->err;
}

typedef struct fixture {
    td_engine *e;
    td_topic_ref *ref;
    td_part *p;
    int64_t pid;
    int16_t epoch;
    int32_t seq;
    answer a;
} fixture;

static void begin(fixture *f)
{
    txn_tp tp = {"t", 0, TXN_OK};
    ASSERT_OK(broker_txn_add_partitions(f->e, "g", f->pid, f->epoch, &tp, 1, on_done, &f->a));
    ASSERT_EQ(wait_answer(&f->a), TXN_OK);
    ASSERT_EQ(tp.err, TXN_OK);
}

/* Appends a transactional batch of 2 records as the producer; its base offset. */
static int64_t append_txn(fixture *f)
{
    td_event ev[2] = {{.value = "a", .value_len = 1, .timestamp_ms = td_wall_ms()},
                      {.value = "b", .value_len = 1, .timestamp_ms = td_wall_ms()}};
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    o.producer_id = f->pid;
    o.producer_epoch = f->epoch;
    o.base_sequence = f->seq;
    o.transactional = true;
    f->seq += 2;
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(batch_encode(&b, &o, ev, 2));
    broker_append_result res;
    ASSERT_OK(broker_part_append_checked(f->p, b.p, b.len, td_wall_ms(), &res));
    ASSERT_OK(broker_part_wait_durable(f->p, res.end_offset));
    td_buf_free(&b);
    return res.base_offset;
}

/* The producer's open transaction in the partition: its first offset, or -1. */
static int64_t open_first(fixture *f)
{
    broker_producer *v = NULL;
    size_t n = 0;
    ASSERT_OK(broker_part_producers(f->p, &v, &n));
    int64_t first = -1;
    for (size_t i = 0; i < n; i++)
        if (v[i].pid == f->pid)
            first = v[i].txn_first;
    free(v);
    return first;
}

/* Waits (bounded) until the id's transaction is complete: its markers are durable. */
static void wait_complete(fixture *f)
{
    for (int i = 0; i < 2000; i++) {
        txn_info *v = NULL;
        size_t n = 0;
        ASSERT_OK(broker_txn_list(f->e, &v, &n));
        ASSERT_EQ(n, 1);
        const char *st = txn_state_name(v[0].state);
        bool done = strcmp(st, "CompleteCommit") == 0 || strcmp(st, "CompleteAbort") == 0;
        broker_txn_infos_free(v, n);
        if (done)
            return;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    ASSERT(!"the transaction did not complete");
}

typedef struct late {
    fixture *f;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool verified;
    int64_t base;
} late;

/* A produce that is verified, then slow to append (a loaded event loop). */
static void *late_produce(void *arg)
{
    late *l = arg;
    fixture *f = l->f;
    ASSERT_EQ(broker_txn_verify(f->e, "g", f->pid, f->epoch, "t", 0), TXN_OK);
    pthread_mutex_lock(&l->mu);
    l->verified = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    struct timespec ts = {0, 300 * 1000000}; /* EndTxn is asked for meanwhile */
    nanosleep(&ts, NULL);
    l->base = append_txn(f);
    broker_txn_verified(f->e);
    return NULL;
}

static void test_a_verified_batch_lands_before_the_marker(void)
{
    char *dir = test_tmpdir("txn-guard");
    fixture f = {.e = test_engine_open(dir)};
    answer_init(&f.a);
    ASSERT_OK(td_topic_create(f.e, "t", 1, NULL, 0));
    ASSERT_OK(broker_topic_acquire(f.e, "t", &f.ref));
    f.p = broker_topic_part(f.ref, 0);
    ASSERT_OK(broker_txn_init_pid(f.e, "g", 60000, -1, -1, on_done, &f.a));
    ASSERT_EQ(wait_answer(&f.a), TXN_OK);
    f.pid = f.a.pid;
    f.epoch = f.a.epoch;

    /* A transaction with one batch in, then a second batch verified just before the commit. */
    begin(&f);
    ASSERT_EQ(append_txn(&f), 0);
    late l = {.f = &f};
    pthread_mutex_init(&l.mu, NULL);
    pthread_cond_init(&l.cv, NULL);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, late_produce, &l), 0);
    pthread_mutex_lock(&l.mu);
    while (!l.verified)
        pthread_cond_wait(&l.cv, &l.mu);
    pthread_mutex_unlock(&l.mu);
    ASSERT_OK(broker_txn_end(f.e, "g", f.pid, f.epoch, true, on_done, &f.a));
    ASSERT_EQ(wait_answer(&f.a), TXN_OK); /* answered at Prepare; the marker waits */
    ASSERT_EQ(pthread_join(th, NULL), 0);
    wait_complete(&f);
    /* The late batch is inside the transaction: the marker came after it, nothing is open,
     * and every offset is stable. */
    ASSERT_EQ(l.base, 2);
    ASSERT_EQ(open_first(&f), -1);
    ASSERT_EQ(part_log_end(f.p), 5); /* 2 + 2 records, the marker */
    ASSERT_EQ(part_last_stable(f.p), 5);

    /* Verified after the end: refused, and nothing held (the next markers are written). */
    ASSERT_EQ(broker_txn_verify(f.e, "g", f.pid, f.epoch, "t", 0), TXN_INVALID_STATE);
    ASSERT_EQ(broker_txn_verify(f.e, "g", f.pid, (int16_t)(f.epoch + 1), "t", 0), TXN_FENCED);
    begin(&f);
    ASSERT_EQ(broker_txn_verify(f.e, "g", f.pid, f.epoch, "t", 0), TXN_OK);
    ASSERT_EQ(append_txn(&f), 5);
    broker_txn_verified(f.e);
    ASSERT_OK(broker_txn_end(f.e, "g", f.pid, f.epoch, false, on_done, &f.a));
    ASSERT_EQ(wait_answer(&f.a), TXN_OK);
    wait_complete(&f);
    ASSERT_EQ(open_first(&f), -1);
    ASSERT_EQ(part_last_stable(f.p), 8);

    pthread_cond_destroy(&l.cv);
    pthread_mutex_destroy(&l.mu);
    broker_topic_release(f.ref);
    td_engine_close(f.e);
    pthread_cond_destroy(&f.a.cv);
    pthread_mutex_destroy(&f.a.mu);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_a_verified_batch_lands_before_the_marker))
