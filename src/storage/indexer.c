/*
 * indexer.c: the thread that catches up the partitions' in-memory key and trace indexes from
 * their logs (segkeys.c "Catching up"; docs/storage.md "Key index files").
 *
 * Why a thread: adding an event to a segment's index is a digest of its key and a probe of a
 * table larger than the caches, which costs a small event's append a fifth of its time when
 * the appender pays it. Appends instead queue their partition here and return; this thread
 * reads what they wrote back from the log (from the page cache) and indexes it. Nothing waits
 * for it: a lookup, a conditional append and a segment's seal catch the index up themselves
 * from where it stands, and an append that finds its partition's index too far behind
 * (IX_LAG_MAX in segkeys.c) catches it up too, so a thread that falls behind slows appends
 * rather than let the work grow.
 *
 * The queue is a FIFO of partitions, each in it at most once (ix_queued). A partition leaves it
 * for good at part_close (indexer_detach), which waits while the thread works on it.
 * Lock order: a partition's mu, then the indexer's mu; the thread holds no lock of its own
 * while it takes a partition's.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "storage/part_int.h"
#include "storage/segkeys.h"

struct td_indexer {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a partition was queued, or stop */
    pthread_cond_t done; /* the thread left `current` */
    td_part *head, *tail;
    td_part *current; /* being caught up by the thread */
    bool idle, stop;
    pthread_t th;
};

static void enqueue(td_indexer *x, td_part *p)
{
    if (x->tail)
        x->tail->ix_next = p;
    else
        x->head = p;
    x->tail = p;
    __atomic_store_n(&p->ix_queued, 1, __ATOMIC_RELEASE);
}

static void *indexer_main(void *arg)
{
    td_indexer *x = arg;
    pthread_mutex_lock(&x->mu);
    while (!x->stop) {
        td_part *p = x->head;
        if (!p) {
            x->idle = true;
            pthread_cond_wait(&x->work, &x->mu);
            x->idle = false;
            continue;
        }
        x->head = p->ix_next;
        if (!x->head)
            x->tail = NULL;
        p->ix_next = NULL;
        __atomic_store_n(&p->ix_queued, 0, __ATOMIC_RELEASE);
        x->current = p;
        pthread_mutex_unlock(&x->mu);
        bool more = segkeys_catch_up(p);
        pthread_mutex_lock(&x->mu);
        x->current = NULL;
        /* Its turn is over: a partition with more to do, or woken meanwhile (ix_queued set
         * while it was not in the queue), goes behind the others. */
        if ((more || p->ix_queued) && !p->ix_detached)
            enqueue(x, p);
        pthread_cond_broadcast(&x->done);
    }
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

int indexer_new(td_indexer **out)
{
    td_indexer *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->work, NULL);
    pthread_cond_init(&x->done, NULL);
    int rc = -pthread_create(&x->th, NULL, indexer_main, x);
    if (rc) {
        pthread_cond_destroy(&x->done);
        pthread_cond_destroy(&x->work);
        pthread_mutex_destroy(&x->mu);
        free(x);
        return td_fail(rc, "cannot start the indexer thread: %s", td_strerror(rc));
    }
    *out = x;
    return 0;
}

void indexer_free(td_indexer *x)
{
    if (!x)
        return;
    pthread_mutex_lock(&x->mu);
    x->stop = true;
    pthread_cond_signal(&x->work);
    pthread_mutex_unlock(&x->mu);
    pthread_join(x->th, NULL);
    pthread_cond_destroy(&x->done);
    pthread_cond_destroy(&x->work);
    pthread_mutex_destroy(&x->mu);
    free(x);
}

void part_set_indexer(td_part *p, td_indexer *x)
{
    p->indexer = x;
}

void indexer_wake(td_part *p)
{
    td_indexer *x = p->indexer;
    if (!x || __atomic_load_n(&p->ix_queued, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&x->mu);
    if (p->ix_queued || p->ix_detached) {
        /* queued already, or closing */
    } else if (x->current == p) {
        /* Marked only: the thread queues it again when it is done with it (what it read may
         * end before this append). */
        __atomic_store_n(&p->ix_queued, 1, __ATOMIC_RELEASE);
    } else {
        enqueue(x, p);
        if (x->idle)
            pthread_cond_signal(&x->work);
    }
    pthread_mutex_unlock(&x->mu);
}

void indexer_detach(td_part *p)
{
    td_indexer *x = p->indexer;
    if (!x)
        return;
    pthread_mutex_lock(&x->mu);
    p->ix_detached = true;
    if (p->ix_queued && x->current != p) {
        td_part *prev = NULL;
        for (td_part *q = x->head; q; prev = q, q = q->ix_next)
            if (q == p) {
                if (prev)
                    prev->ix_next = p->ix_next;
                else
                    x->head = p->ix_next;
                if (x->tail == p)
                    x->tail = prev;
                break;
            }
        p->ix_next = NULL;
    }
    __atomic_store_n(&p->ix_queued, 0, __ATOMIC_RELEASE);
    while (x->current == p)
        pthread_cond_wait(&x->done, &x->mu);
    pthread_mutex_unlock(&x->mu);
}
