/*
 * pool.c: a fork-join pool of worker threads for CPU-bound work that one caller's thread would
 * otherwise do alone (base.h, "Parallel work"). The caller hands out a range of items, takes a
 * share itself and returns when every item is done: the work is the same as the caller's own
 * loop, only spread over cores that would idle. Used by the schema registry to validate the
 * records of a produced batch (docs/schemas.md, "Enforcement on produce").
 *
 * One job at a time: a caller that finds the pool busy with another caller's job runs its own
 * job alone, at once, instead of waiting (an event loop never waits on another loop's work).
 * Items are claimed in chunks through one atomic counter, so a worker that starts late or runs
 * slowly takes fewer chunks, and the caller waits at most for the chunks in progress when it
 * runs out. The threads are created on the first job that wants them, so an engine that never
 * validates a large batch never has them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "base/base.h"

struct td_pool {
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* a new job (gen moved), or stop */
    pthread_cond_t done_cv; /* the last worker left the job */
    pthread_t *threads;
    int nthreads;  /* wanted */
    int started;   /* created (0 until the first job that wants them; -1: creation failed) */
    bool stop;
    uint64_t gen;  /* jobs posted */
    atomic_bool busy;
    /* The job, under mu (fn NULL between jobs): workers copy it on the way in. */
    td_pool_fn fn;
    void *arg;
    size_t total, chunk;
    int inside;    /* workers inside the job */
    atomic_size_t next;
};

/* Claims and runs chunks of the current job until none is left. */
static void run_chunks(td_pool *p, td_pool_fn fn, void *arg, size_t total, size_t chunk)
{
    for (;;) {
        size_t b = atomic_fetch_add_explicit(&p->next, chunk, memory_order_relaxed);
        if (b >= total)
            return;
        fn(arg, b, TD_MIN(total, b + chunk));
    }
}

static void *worker(void *arg)
{
    td_pool *p = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->gen == seen)
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stop)
            break;
        seen = p->gen;
        if (!p->fn)
            continue; /* woke after that job ended */
        td_pool_fn fn = p->fn;
        void *a = p->arg;
        size_t total = p->total, chunk = p->chunk;
        p->inside++;
        pthread_mutex_unlock(&p->mu);
        run_chunks(p, fn, a, total, chunk);
        pthread_mutex_lock(&p->mu);
        if (--p->inside == 0)
            pthread_cond_signal(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

td_pool *td_pool_new(int nthreads)
{
    if (nthreads <= 0)
        return NULL;
    td_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->threads = calloc((size_t)nthreads, sizeof(*p->threads));
    if (!p->threads) {
        free(p);
        return NULL;
    }
    p->nthreads = nthreads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    atomic_init(&p->busy, false);
    atomic_init(&p->next, 0);
    return p;
}

int td_pool_threads(const td_pool *p)
{
    return p ? p->nthreads : 0;
}

/* Under mu: creates the threads once. False when none could be created (the callers then run
 * their jobs alone). */
static bool start_locked(td_pool *p)
{
    if (p->started)
        return p->started > 0;
    int n = 0;
    for (; n < p->nthreads; n++)
        if (pthread_create(&p->threads[n], NULL, worker, p) != 0)
            break;
    p->started = n > 0 ? n : -1;
    return n > 0;
}

void td_pool_run(td_pool *p, size_t total, size_t chunk, td_pool_fn fn, void *arg)
{
    if (total == 0)
        return;
    if (chunk == 0)
        chunk = 1;
    bool expect = false;
    if (!p || total <= chunk ||
        !atomic_compare_exchange_strong_explicit(&p->busy, &expect, true, memory_order_acquire,
                                                 memory_order_relaxed)) {
        fn(arg, 0, total);
        return;
    }
    pthread_mutex_lock(&p->mu);
    if (!start_locked(p)) {
        pthread_mutex_unlock(&p->mu);
        atomic_store_explicit(&p->busy, false, memory_order_release);
        fn(arg, 0, total);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->total = total;
    p->chunk = chunk;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    p->gen++;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);

    run_chunks(p, fn, arg, total, chunk);

    /* Every chunk is claimed; wait for the workers still running one. A worker that wakes
     * after this finds fn NULL and goes back to sleep; one that entered finds nothing left. */
    pthread_mutex_lock(&p->mu);
    while (p->inside > 0)
        pthread_cond_wait(&p->done_cv, &p->mu);
    p->fn = NULL;
    p->arg = NULL;
    pthread_mutex_unlock(&p->mu);
    atomic_store_explicit(&p->busy, false, memory_order_release);
}

void td_pool_free(td_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work_cv);
    int started = p->started;
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < started; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->work_cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}
