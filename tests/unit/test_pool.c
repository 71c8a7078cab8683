/*
 * test_pool.c: the fork-join pool (base/pool.c): every item of a job runs exactly once, on the
 * caller and the workers together, whatever the chunk; a caller that finds the pool busy runs
 * its job alone; jobs from several threads at once; a NULL pool.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "test.h"

typedef struct job {
    atomic_int *hits;        /* per item: how many times it ran */
    atomic_int ranges;       /* ranges run */
    pthread_t caller;
    atomic_int off_caller;   /* items run on another thread than the caller */
    int spin;                /* busy work per item, so that workers get a share */
} job;

static void run_items(void *arg, size_t b, size_t end)
{
    job *j = arg;
    atomic_fetch_add(&j->ranges, 1);
    for (size_t i = b; i < end; i++) {
        volatile int x = 0;
        for (int k = 0; k < j->spin; k++)
            x = x + k;
        (void)x;
        atomic_fetch_add(&j->hits[i], 1);
        if (!pthread_equal(pthread_self(), j->caller))
            atomic_fetch_add(&j->off_caller, 1);
    }
}

static void check_once(job *j, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (atomic_load(&j->hits[i]) != 1)
            TEST_FAIL_("item %zu ran %d times", i, atomic_load(&j->hits[i]));
}

static void job_init(job *j, size_t n, int spin)
{
    memset(j, 0, sizeof(*j));
    j->hits = calloc(n, sizeof(*j->hits));
    j->caller = pthread_self();
    j->spin = spin;
}

static void test_every_item_once(void)
{
    td_pool *p = td_pool_new(3);
    ASSERT(p != NULL);
    ASSERT_EQ(td_pool_threads(p), 3);
    static const size_t sizes[] = {1, 2, 15, 16, 17, 100, 1000, 4097};
    static const size_t chunks[] = {0, 1, 7, 16, 5000};
    for (size_t s = 0; s < TD_ARRAY_LEN(sizes); s++)
        for (size_t c = 0; c < TD_ARRAY_LEN(chunks); c++) {
            job j;
            job_init(&j, sizes[s], 50);
            td_pool_run(p, sizes[s], chunks[c], run_items, &j);
            check_once(&j, sizes[s]);
            size_t chunk = chunks[c] ? chunks[c] : 1;
            if (sizes[s] <= chunk)
                ASSERT_EQ(atomic_load(&j.ranges), 1); /* one range, on the caller */
            else
                ASSERT_EQ(atomic_load(&j.ranges), (int)((sizes[s] + chunk - 1) / chunk));
            free(j.hits);
        }
    td_pool_run(p, 0, 4, run_items, NULL); /* nothing to do: fn is not called */
    td_pool_free(p);
}

/* The workers take a share: over many large jobs of slow items, some run off the caller. */
static void test_workers_share(void)
{
    td_pool *p = td_pool_new(1);
    int off = 0;
    for (int round = 0; round < 50 && off == 0; round++) {
        job j;
        job_init(&j, 2000, 2000);
        td_pool_run(p, 2000, 4, run_items, &j);
        check_once(&j, 2000);
        off += atomic_load(&j.off_caller);
        free(j.hits);
    }
    ASSERT(off > 0);
    td_pool_free(p);
}

static void test_null_pool(void)
{
    ASSERT(td_pool_new(0) == NULL);
    ASSERT(td_pool_new(-1) == NULL);
    ASSERT_EQ(td_pool_threads(NULL), 0);
    job j;
    job_init(&j, 100, 0);
    td_pool_run(NULL, 100, 10, run_items, &j);
    check_once(&j, 100);
    ASSERT_EQ(atomic_load(&j.ranges), 1);
    ASSERT_EQ(atomic_load(&j.off_caller), 0);
    free(j.hits);
    td_pool_free(NULL);
}

/* Several callers at once: each job is whole; a caller that finds the pool busy runs alone. */
typedef struct caller_arg {
    td_pool *p;
    int rounds;
    int failures;
} caller_arg;

static void *caller_main(void *arg)
{
    caller_arg *a = arg;
    for (int r = 0; r < a->rounds; r++) {
        job j;
        job_init(&j, 300, 100);
        td_pool_run(a->p, 300, 8, run_items, &j);
        for (size_t i = 0; i < 300; i++)
            if (atomic_load(&j.hits[i]) != 1)
                a->failures++;
        free(j.hits);
    }
    return NULL;
}

static void test_concurrent_callers(void)
{
    td_pool *p = td_pool_new(2);
    pthread_t t[4];
    caller_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (caller_arg){.p = p, .rounds = 200};
        ASSERT_EQ(pthread_create(&t[i], NULL, caller_main, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ASSERT_EQ(a[i].failures, 0);
    }
    td_pool_free(p);
}

/* A pool that never ran a job has no threads to join. */
static void test_free_unused(void)
{
    td_pool_free(td_pool_new(8));
}

TEST_MAIN(TEST(test_every_item_once), TEST(test_workers_share), TEST(test_null_pool),
          TEST(test_concurrent_callers), TEST(test_free_unused))
