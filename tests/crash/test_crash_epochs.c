/*
 * Crash safety of the leader epoch checkpoint (storage/epochs.c, docs/storage.md "Leader
 * epochs"): 2000 seeded random cases. Each changes a leader epoch cache on the in-memory
 * crash-simulating io table (tests/support/memio.c) with random assigns, observed batches and
 * truncations from either end, flushing it now and then, until the "machine" dies at a random
 * operation (renames and unlinks count), then simulates the power loss and reopens the cache:
 * it must read, and hold exactly what the last flush that returned 0 wrote, or what the flush
 * that was under way when the machine died would have written.
 * A failing case prints its seed; run `test_crash_epochs <seed>` to replay it alone.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/epochs.h"
#include "support/memio.h"
#include "test.h"

#define MAXE 256

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

typedef struct snap {
    td_epoch_entry v[MAXE];
    size_t n;
} snap;

static void take(const td_epochs *c, snap *s)
{
    const td_epoch_entry *v = epochs_entries(c, &s->n);
    ASSERT(s->n <= MAXE);
    if (s->n)
        memcpy(s->v, v, s->n * sizeof(*v));
}

static bool same(const td_epochs *c, const snap *s)
{
    size_t n;
    const td_epoch_entry *v = epochs_entries(c, &n);
    if (n != s->n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (v[i].epoch != s->v[i].epoch || v[i].start_offset != s->v[i].start_offset)
            return false;
    return true;
}

/* One random change; log_end follows the offsets assigned, as a log's end would. */
static void change(td_epochs *c, uint64_t *s, int32_t *epoch, int64_t *log_end)
{
    switch (rnd(s) % 8) {
    case 0:
    case 1:
    case 2: /* a new leader epoch's first batch */
        *epoch += 1 + (int32_t)(rnd(s) % 3);
        epochs_assign(c, *epoch, *log_end);
        break;
    case 3: /* an epoch seen before assigned again: an older one truncates the later ones */
        epochs_assign(c, (int32_t)(rnd(s) % (uint64_t)(*epoch + 1)), *log_end);
        break;
    case 4: /* a follower's truncation to a diverging point */
        *log_end -= (int64_t)(rnd(s) % (uint64_t)(*log_end + 1)) / 2;
        epochs_truncate_from_end(c, *log_end);
        break;
    case 5: /* retention */
        epochs_truncate_from_start(c, (int64_t)(rnd(s) % (uint64_t)(*log_end + 1)));
        break;
    default: /* appends in the current epoch */
        epochs_observe_batch(c, *epoch, *log_end);
        break;
    }
    *log_end += 1 + (int64_t)(rnd(s) % 50);
}

static int64_t total_flushes, total_failed, total_entries;

static void run_case(uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 11;
    memio *m = memio_new();
    td_epochs *c;
    ASSERT_OK(epochs_open(memio_table(m), "/p", &c));
    memio_count_dir_ops(m, true);
    memio_fail_after(m, (int64_t)(rnd(&s) % 120));
    static snap acked, trying;
    acked.n = 0;
    trying.n = 0;
    int32_t epoch = 0;
    int64_t log_end = 0;
    for (int i = 0; i < 400; i++) {
        change(c, &s, &epoch, &log_end);
        if (rnd(&s) % 4)
            continue;
        take(c, &trying);
        if (epochs_flush(c) != 0) {
            total_failed++;
            break;
        }
        acked = trying;
        total_flushes++;
    }
    epochs_close(c);
    memio_crash(m, seed);
    int rc = epochs_open(memio_table(m), "/p", &c);
    if (rc != 0)
        TEST_FAIL_("seed %llu: the checkpoint does not read: %s", (unsigned long long)seed,
                   td_last_error());
    if (!same(c, &acked) && !same(c, &trying))
        TEST_FAIL_("seed %llu: the checkpoint holds neither the last flushed cache nor the one "
                   "being flushed",
                   (unsigned long long)seed);
    total_entries += (int64_t)acked.n;
    epochs_close(c);
    memio_free(m);
}

static int cases = 2000;
static uint64_t only_seed;

static void test_flush_then_crash(void)
{
    if (only_seed) {
        run_case(only_seed);
        return;
    }
    for (int i = 1; i <= cases; i++)
        run_case((uint64_t)i);
    fprintf(stderr, "%d crash cases: %lld flushes, %lld failed, %lld entries checked\n", cases,
            (long long)total_flushes, (long long)total_failed, (long long)total_entries);
    /* The cases must exercise something: flushes that worked and ones that the crash cut. */
    ASSERT(total_flushes > cases * 5);
    ASSERT(total_failed > cases / 2);
    ASSERT(total_entries > cases);
}

int main(int argc, char **argv)
{
    td_log_set_level(TD_LOG_OFF); /* truncations by older epochs warn on purpose */
    if (argc > 1)
        only_seed = strtoull(argv[1], NULL, 10);
    fprintf(stderr, "-- test_flush_then_crash\n");
    test_flush_then_crash();
    printf("1 passed, 0 failed\n");
    return 0;
}
