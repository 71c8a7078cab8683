/* Unit tests for the per-segment key index of key.index topics (storage/segkeys.c): versions
 * and reads of one key's events against a model of the log, through rolls, seals, reopen,
 * missing / torn / corrupt index files, retention, compaction, configuration changes, and the
 * conditional append. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>

#include "storage/segkeys.h"
#include "storage/storage.h"
#include "support/gaplog.h"
#include "test.h"

#define NKEYS 12
#define MAXEV 4096

/* The model: the offsets of each key's events, in order. */
typedef struct model {
    int64_t off[NKEYS][MAXEV / 4];
    size_t n[NKEYS];
} model;

static td_topic_config keyed_cfg(void)
{
    td_topic_config c;
    td_topic_config_init(&c);
    c.key_index = true;
    c.segment_bytes = 2048; /* many segments */
    c.fsync_policy = TD_FSYNC_NONE;
    return c;
}

/* The indexer thread the partitions get (NULL: appends index their batches themselves). */
static td_indexer *g_ix;

static int open_p(const char *dir, const td_topic_config *c, td_part **p)
{
    int rc = part_open(td_io_posix(), dir, "t/0", c, p);
    if (rc == 0)
        part_set_indexer(*p, g_ix);
    return rc;
}

static void key_name(int k, char *buf, size_t n)
{
    snprintf(buf, n, "entity-%d", k);
}

/* Appends a batch of `count` events, event i with key (k0 + i) % NKEYS (k0 < 0: no key for
 * the second event, to mix null keys in); records them in m. */
static int64_t put_batch(td_part *p, model *m, int k0, int count)
{
    gap_rec r[8];
    char keys[8][32], vals[8][32];
    for (int i = 0; i < count; i++) {
        int k = (abs(k0) + i) % NKEYS;
        key_name(k, keys[i], sizeof(keys[i]));
        snprintf(vals[i], sizeof(vals[i]), "v%d", i);
        r[i] = (gap_rec){i, k0 < 0 && i == 1 ? NULL : keys[i], vals[i]};
    }
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(gaplog_batch(&b, 0, count - 1, r, (size_t)count, GAPLOG_TS));
    td_append_result res;
    ASSERT_OK(part_append(p, b.p, b.len, GAPLOG_TS, &res));
    td_buf_free(&b);
    for (int i = 0; i < count; i++) {
        if (k0 < 0 && i == 1)
            continue;
        int k = (abs(k0) + i) % NKEYS;
        m->off[k][m->n[k]++] = res.base_offset + i;
    }
    return res.base_offset;
}

/* Every key's version and events agree with the model (from the log start ls). */
static void check(td_part *p, const model *m, int64_t ls)
{
    char key[32];
    for (int k = 0; k < NKEYS; k++) {
        key_name(k, key, sizeof(key));
        size_t first = 0;
        while (first < m->n[k] && m->off[k][first] < ls)
            first++;
        int64_t v;
        ASSERT_OK(part_key_version(p, key, strlen(key), &v));
        ASSERT_EQ(v, first < m->n[k] ? m->off[k][m->n[k] - 1] : TD_VERSION_NO_STREAM);
        /* All of them, in pages of 7. */
        int64_t out[7], from = 0;
        size_t got, at = first;
        do {
            ASSERT_OK(part_key_offsets(p, key, strlen(key), from, out, 7, &got));
            for (size_t i = 0; i < got; i++)
                ASSERT_EQ(out[i], m->off[k][at++]);
            if (got)
                from = out[got - 1] + 1;
        } while (got == 7);
        ASSERT_EQ(at, m->n[k]);
        /* From the middle. */
        if (m->n[k] - first > 2) {
            size_t mid = first + (m->n[k] - first) / 2;
            ASSERT_OK(part_key_offsets(p, key, strlen(key), m->off[k][mid], out, 1, &got));
            ASSERT_EQ(got, 1);
            ASSERT_EQ(out[0], m->off[k][mid]);
        }
    }
    int64_t v;
    ASSERT_OK(part_key_version(p, "nobody", 6, &v));
    ASSERT_EQ(v, TD_VERSION_NO_STREAM);
}

static void fill(td_part *p, model *m, int batches)
{
    for (int i = 0; i < batches; i++)
        put_batch(p, m, i % 5 == 0 ? -(i % NKEYS) : i * 7 % NKEYS, 1 + i % 4);
}

static int count_files(const char *dir, const char *ext)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "ls %s | grep -c '%s$'", dir, ext);
    FILE *f = popen(cmd, "r");
    int n = 0;
    if (fscanf(f, "%d", &n) != 1)
        n = 0;
    pclose(f);
    return n;
}

/* A key index file of dir (the first by name), into path. */
static void first_keyindex(const char *dir, char *path, size_t n)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "ls %s/*.keyindex | head -1", dir);
    FILE *f = popen(cmd, "r");
    ASSERT(fgets(path, (int)n, f) != NULL);
    pclose(f);
    path[strcspn(path, "\n")] = 0;
}

static void test_versions_and_reads_through_rolls_and_reopen(void)
{
    char *dir = test_tmpdir("segkeys");
    td_topic_config c = keyed_cfg();
    td_part *p;
    ASSERT_OK(open_p(dir, &c, &p));
    static model m;
    memset(&m, 0, sizeof(m));
    check(p, &m, 0);
    fill(p, &m, 300);
    td_part_stats st;
    part_stats(p, &st);
    ASSERT(st.segments > 5);
    check(p, &m, 0); /* sealed segments' indexes still in memory (seals owed) */
    ASSERT_OK(part_sync(p)); /* pays the seals: files written, memory dropped */
    ASSERT_EQ(count_files(dir, ".keyindex"), st.segments - 1);
    check(p, &m, 0);
    fill(p, &m, 50);
    check(p, &m, 0);
    part_close(p);
    ASSERT_OK(open_p(dir, &c, &p));
    check(p, &m, 0);
    fill(p, &m, 20);
    check(p, &m, 0);
    part_close(p);
    test_rmrf(dir);
}

static void test_missing_torn_and_corrupt_files_are_rebuilt(void)
{
    char *dir = test_tmpdir("segkeys");
    td_topic_config c = keyed_cfg();
    td_part *p;
    ASSERT_OK(open_p(dir, &c, &p));
    static model m;
    memset(&m, 0, sizeof(m));
    fill(p, &m, 200);
    part_close(p);
    char path[1024];
    first_keyindex(dir, path, sizeof(path));
    struct stat sb;
    ASSERT_OK(stat(path, &sb));
    off_t whole = sb.st_size;
    /* Torn: cut in the middle of an entry. */
    ASSERT_OK(truncate(path, whole - 7));
    ASSERT_OK(open_p(dir, &c, &p));
    ASSERT_OK(stat(path, &sb));
    ASSERT_EQ(sb.st_size, whole); /* rebuilt at open */
    check(p, &m, 0);
    part_close(p);
    /* Missing. */
    ASSERT_OK(unlink(path));
    ASSERT_OK(open_p(dir, &c, &p));
    ASSERT_OK(stat(path, &sb));
    check(p, &m, 0);
    part_close(p);
    /* Corrupt in the middle (same size): caught by the checksum at the first lookup. */
    int fd = open(path, O_RDWR);
    ASSERT(fd >= 0);
    uint8_t x = 0;
    ASSERT_EQ(pread(fd, &x, 1, 25), 1);
    x ^= 0x5a;
    ASSERT_EQ(pwrite(fd, &x, 1, 25), 1);
    close(fd);
    ASSERT_OK(open_p(dir, &c, &p));
    check(p, &m, 0);
    check(p, &m, 0); /* and again from the rebuilt file */
    part_close(p);
    test_rmrf(dir);
}

static void test_retention_moves_versions(void)
{
    char *dir = test_tmpdir("segkeys");
    td_topic_config c = keyed_cfg();
    td_part *p;
    ASSERT_OK(open_p(dir, &c, &p));
    static model m;
    memset(&m, 0, sizeof(m));
    fill(p, &m, 200);
    /* A key written only at the start, then the start deleted. */
    model m2;
    memset(&m2, 0, sizeof(m2));
    ASSERT_OK(part_sync(p));
    int64_t ls;
    int64_t cut = part_log_end(p) / 2 + 3; /* inside a segment */
    ASSERT_OK(part_delete_before(p, cut, &ls));
    ASSERT_EQ(ls, cut);
    check(p, &m, cut);
    int before = count_files(dir, ".keyindex");
    ASSERT_OK(part_delete_before(p, TD_DELETE_TO_HIGH_WATERMARK, &ls));
    check(p, &m, ls); /* every key's stream gone: no_stream */
    ASSERT(count_files(dir, ".keyindex") < before); /* deleted with their segments */
    part_close(p);
    test_rmrf(dir);
}

static void test_compaction_keeps_latest_and_versions(void)
{
    char *dir = test_tmpdir("segkeys");
    td_topic_config c = keyed_cfg();
    c.cleanup_policy = TD_CLEANUP_COMPACT;
    td_part *p;
    ASSERT_OK(open_p(dir, &c, &p));
    static model m;
    memset(&m, 0, sizeof(m));
    for (int i = 0; i < 200; i++)
        put_batch(p, &m, i % NKEYS, 1 + i % 3); /* keys only: compacted topics need them */
    ASSERT_OK(part_sync(p));
    int64_t latest[NKEYS];
    char key[32];
    for (int k = 0; k < NKEYS; k++) {
        key_name(k, key, sizeof(key));
        ASSERT_OK(part_key_version(p, key, strlen(key), &latest[k]));
        ASSERT_EQ(latest[k], m.off[k][m.n[k] - 1]);
    }
    part_clean_opts o = {.now_ms = GAPLOG_TS + 100000, .map_bytes = 1 << 20};
    part_clean_result res;
    ASSERT_OK(part_clean(p, &o, &res));
    ASSERT(res.records_removed > 0);
    ASSERT_OK(part_sync(p));
    int64_t act_base = part_log_end(p); /* the active segment is not cleaned */
    td_part_stats st;
    part_stats(p, &st);
    for (int k = 0; k < NKEYS; k++) {
        key_name(k, key, sizeof(key));
        int64_t v;
        ASSERT_OK(part_key_version(p, key, strlen(key), &v));
        ASSERT_EQ(v, latest[k]); /* the version survives compaction */
        /* Each offset listed still holds the key's event: read them all. */
        int64_t out[256];
        size_t got;
        ASSERT_OK(part_key_offsets(p, key, strlen(key), 0, out, 256, &got));
        ASSERT(got >= 1 && got < m.n[k]);
        ASSERT_EQ(out[got - 1], latest[k]);
        (void)act_base;
    }
    part_close(p);
    ASSERT_OK(open_p(dir, &c, &p));
    for (int k = 0; k < NKEYS; k++) {
        key_name(k, key, sizeof(key));
        int64_t v;
        ASSERT_OK(part_key_version(p, key, strlen(key), &v));
        ASSERT_EQ(v, latest[k]);
    }
    part_close(p);
    test_rmrf(dir);
}

static int expect(td_part *p, model *m, int k, int64_t expected, int64_t *current)
{
    char key[32], val[8] = "x";
    key_name(k, key, sizeof(key));
    gap_rec r = {0, key, val};
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(gaplog_batch(&b, 0, 0, &r, 1, GAPLOG_TS));
    part_expect_key ek = {key, strlen(key), expected, false, 0, 0, false};
    part_expect req = {&ek, 1, 0, 0};
    td_append_result res;
    int rc = part_append_expect(p, b.p, b.len, GAPLOG_TS, &res, &req);
    td_buf_free(&b);
    if (rc == 0)
        m->off[k][m->n[k]++] = res.base_offset;
    else if (current)
        *current = ek.current;
    return rc;
}

static void test_expected_versions(void)
{
    char *dir = test_tmpdir("segkeys");
    td_topic_config c = keyed_cfg();
    td_part *p;
    ASSERT_OK(open_p(dir, &c, &p));
    static model m;
    memset(&m, 0, sizeof(m));
    int64_t cur = 0;
    ASSERT_EQ(expect(p, &m, 0, TD_VERSION_EXISTS, &cur), TD_EVERSION);
    ASSERT_EQ(cur, TD_VERSION_NO_STREAM);
    ASSERT_EQ(part_log_end(p), 0); /* nothing written */
    ASSERT_OK(expect(p, &m, 0, TD_VERSION_NO_STREAM, NULL));
    ASSERT_EQ(expect(p, &m, 0, TD_VERSION_NO_STREAM, &cur), TD_EVERSION);
    ASSERT_EQ(cur, 0);
    fill(p, &m, 150); /* other keys, and key 0, over several segments */
    ASSERT_OK(part_sync(p)); /* seals paid: key 0's version is read from a file, if older */
    for (int round = 0; round < 40; round++) {
        int k = round % 3;
        int64_t v = m.n[k] ? m.off[k][m.n[k] - 1] : TD_VERSION_NO_STREAM;
        ASSERT_EQ(expect(p, &m, k, v + 1000, &cur), TD_EVERSION);
        ASSERT_EQ(cur, v);
        ASSERT_OK(expect(p, &m, k, v, NULL));
        ASSERT_OK(expect(p, &m, k, TD_VERSION_EXISTS, NULL));
        ASSERT_OK(expect(p, &m, k, TD_VERSION_ANY, NULL));
        if (round % 10 == 9)
            ASSERT_OK(part_sync(p));
    }
    check(p, &m, 0);
    /* A batch of two keys: both checked, nothing written when one fails. */
    char k1[32], k2[32];
    key_name(1, k1, sizeof(k1));
    key_name(2, k2, sizeof(k2));
    gap_rec r[2] = {{0, k1, "a"}, {1, k2, "b"}};
    td_buf b;
    td_buf_init(&b);
    ASSERT_OK(gaplog_batch(&b, 0, 1, r, 2, GAPLOG_TS));
    part_expect_key ek[2] = {{k1, strlen(k1), m.off[1][m.n[1] - 1], false, 0, 0, false},
                             {k2, strlen(k2), 5, false, 0, 0, false}};
    part_expect req = {ek, 2, 0, 0};
    int64_t end = part_log_end(p);
    td_append_result res;
    ASSERT_EQ(part_append_expect(p, b.p, b.len, GAPLOG_TS, &res, &req), TD_EVERSION);
    ASSERT_EQ(req.failed, 1);
    ASSERT_EQ(ek[1].current, m.off[2][m.n[2] - 1]);
    ASSERT_EQ(part_log_end(p), end);
    td_buf_free(&b);
    part_close(p);
    /* Without key.index: refused, not ignored. */
    c.key_index = false;
    ASSERT_OK(open_p(dir, &c, &p));
    ASSERT_EQ(expect(p, &m, 0, TD_VERSION_ANY, NULL), TD_EUNSUPPORTED);
    int64_t v;
    ASSERT_EQ(part_key_version(p, "x", 1, &v), TD_EUNSUPPORTED);
    part_close(p);
    test_rmrf(dir);
}

static void test_enabled_later_and_memory_bound(void)
{
    char *dir = test_tmpdir("segkeys");
    td_topic_config c = keyed_cfg();
    c.key_index = false;
    c.segment_bytes = 1 << 20;
    td_part *p;
    ASSERT_OK(open_p(dir, &c, &p));
    static model m;
    memset(&m, 0, sizeof(m));
    fill(p, &m, 100); /* not indexed: one segment */
    c.key_index = true;
    c.key_index_memory_bytes = 65536;
    part_set_config(p, &c); /* rolls: the new active segment is indexed */
    check(p, &m, 0);        /* the old one is indexed by its first lookup */
    ASSERT_EQ(count_files(dir, ".keyindex"), 1);
    /* Many distinct keys: the memory bound rolls the active segment. */
    td_part_stats st0, st1;
    part_stats(p, &st0);
    for (int i = 0; i < 3000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "many-%d", i);
        gap_rec r = {0, key, "v"};
        td_buf b;
        td_buf_init(&b);
        ASSERT_OK(gaplog_batch(&b, 0, 0, &r, 1, GAPLOG_TS));
        ASSERT_OK(part_append(p, b.p, b.len, GAPLOG_TS, NULL));
        td_buf_free(&b);
    }
    part_stats(p, &st1);
    ASSERT(st1.segments > st0.segments); /* 1 MiB segments would hold them all */
    int64_t v;
    ASSERT_OK(part_key_version(p, "many-17", 7, &v));
    ASSERT(v >= 0);
    check(p, &m, 0);
    /* Off again: refused. */
    c.key_index = false;
    part_set_config(p, &c);
    ASSERT_EQ(part_key_version(p, "many-17", 7, &v), TD_EUNSUPPORTED);
    part_close(p);
    test_rmrf(dir);
}

/* The file of a segment with thousands of keys is sorted by digest, then offset, whatever
 * order the in-memory table held them in: among the keys, six whose digests start with 0xFFFF,
 * so that all want the table's last slot and linear probing wraps five of them to its start
 * (kx_write takes them last, then sorts). Lookups through the file find every key. */
static void test_file_sorted_with_wrapped_keys(void)
{
    char *dir = test_tmpdir("segkeys");
    td_topic_config c = keyed_cfg();
    c.segment_bytes = 8 << 20; /* one segment */
    td_part *p;
    ASSERT_OK(open_p(dir, &c, &p));
    enum { PLAIN = 3000, WRAP = 6 };
    static char keys[PLAIN + WRAP][32];
    int nk = 0;
    for (int i = 0; nk < WRAP; i++) {
        uint8_t d[TD_KEY_DIGEST_LEN];
        snprintf(keys[nk], sizeof(keys[nk]), "wrap-%d", i);
        td_key_digest(keys[nk], strlen(keys[nk]), d);
        if (d[0] == 0xFF && d[1] == 0xFF)
            nk++;
    }
    for (; nk < PLAIN + WRAP; nk++)
        snprintf(keys[nk], sizeof(keys[nk]), "plain-%d", nk);
    /* Every key once, the wrapped ones a second time at the end. */
    int64_t last[WRAP];
    int events = 0;
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < (round ? WRAP : PLAIN + WRAP); i++) {
            gap_rec r = {0, keys[i], "v"};
            td_buf b;
            td_buf_init(&b);
            ASSERT_OK(gaplog_batch(&b, 0, 0, &r, 1, GAPLOG_TS));
            td_append_result res;
            ASSERT_OK(part_append(p, b.p, b.len, GAPLOG_TS, &res));
            td_buf_free(&b);
            if (i < WRAP)
                last[i] = res.base_offset;
            events++;
        }
    part_close(p); /* writes the active segment's file */
    char path[600];
    first_keyindex(dir, path, sizeof(path));
    FILE *f = fopen(path, "rb");
    ASSERT(f != NULL);
    static uint8_t buf[20 + (PLAIN + 2 * WRAP) * 20 + 1];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    ASSERT_UEQ(n, 20 + (size_t)events * 20);
    ASSERT_EQ((int)td_load_be32(buf + 8), events);
    for (int i = 1; i < events; i++) {
        const uint8_t *a = buf + 20 + (size_t)(i - 1) * 20, *b = a + 20;
        int cmp = memcmp(a, b, 20);
        if (cmp >= 0)
            TEST_FAIL_("entries %d and %d are out of order", i - 1, i);
    }
    ASSERT_OK(open_p(dir, &c, &p));
    for (int i = 0; i < PLAIN + WRAP; i += (i < WRAP ? 1 : 97)) {
        int64_t v;
        ASSERT_OK(part_key_version(p, keys[i], strlen(keys[i]), &v));
        if (i < WRAP)
            ASSERT_EQ(v, last[i]);
        else
            ASSERT_EQ(v, i);
    }
    part_close(p);
    test_rmrf(dir);
}

/* Every test above again with an indexer thread woken at every append: with the default
 * bound on the lag, and with one so small that appends often catch up themselves while the
 * thread works. */
static void test_all_again_with_the_indexer_thread(void)
{
    void (*const tests[])(void) = {test_versions_and_reads_through_rolls_and_reopen,
                                   test_missing_torn_and_corrupt_files_are_rebuilt,
                                   test_retention_moves_versions,
                                   test_compaction_keeps_latest_and_versions,
                                   test_expected_versions,
                                   test_enabled_later_and_memory_bound,
                                   test_file_sorted_with_wrapped_keys};
    const int64_t lag_max[] = {-1, 300};
    for (size_t l = 0; l < 2; l++) {
        ASSERT_OK(indexer_new(&g_ix));
        segkeys_test_tune(0, lag_max[l]);
        for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
            tests[i]();
        indexer_free(g_ix);
        g_ix = NULL;
    }
    segkeys_test_tune(-1, -1);
}

/* Closes p, stops the indexer and puts the defaults back. */
static void close_with_indexer(td_part *p, char *dir)
{
    part_close(p);
    indexer_free(g_ix);
    g_ix = NULL;
    segkeys_test_tune(-1, -1);
    test_rmrf(dir);
}

/* The thread catches the index up without a lookup asking: the lag it leaves reaches 0. */
static void test_indexer_catches_up_without_lookups(void)
{
    char *dir = test_tmpdir("segkeys");
    td_topic_config c = keyed_cfg();
    c.segment_bytes = 64 << 20; /* one segment: the active one */
    ASSERT_OK(indexer_new(&g_ix));
    segkeys_test_tune(0, -1);
    td_part *p;
    ASSERT_OK(open_p(dir, &c, &p));
    static model m;
    memset(&m, 0, sizeof(m));
    fill(p, &m, 600);
    int64_t lag = segkeys_lag(p);
    for (int i = 0; i < 1000 && lag > 0; i++) {
        usleep(10000);
        lag = segkeys_lag(p);
    }
    ASSERT_EQ(lag, 0);
    check(p, &m, 0);
    close_with_indexer(p, dir);
}

/* Appends, the indexer thread and lookups at once (for TSan and ASan): every version a lookup
 * sees is an offset the key was written at, never older than one it saw before, and at the
 * end the index agrees with the model. */
typedef struct race {
    td_part *p;
    model *m;
    int batches;
    int done; /* atomic */
} race;

static void *race_appender(void *arg)
{
    race *r = arg;
    for (int i = 0; i < r->batches; i++)
        put_batch(r->p, r->m, i * 5 % NKEYS, 1 + i % 4);
    __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void test_lookups_while_the_indexer_runs(void)
{
    char *dir = test_tmpdir("segkeys");
    td_topic_config c = keyed_cfg();
    c.segment_bytes = 16 << 10; /* rolls and seals meanwhile */
    ASSERT_OK(indexer_new(&g_ix));
    segkeys_test_tune(0, 4096);
    td_part *p;
    ASSERT_OK(open_p(dir, &c, &p));
    static model m;
    memset(&m, 0, sizeof(m));
    race r = {p, &m, 1500, 0};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, race_appender, &r), 0);
    int64_t seen[NKEYS];
    for (int k = 0; k < NKEYS; k++)
        seen[k] = TD_VERSION_NO_STREAM;
    long lookups = 0;
    while (!__atomic_load_n(&r.done, __ATOMIC_ACQUIRE) && lookups < 200000) {
        int k = (int)(lookups++ % NKEYS);
        char key[32];
        key_name(k, key, sizeof(key));
        int64_t v;
        ASSERT_OK(part_key_version(p, key, strlen(key), &v));
        ASSERT(v >= seen[k]);
        if (v >= 0) { /* an offset of this key: its record's key says so */
            int64_t out[1];
            size_t got;
            ASSERT_OK(part_key_offsets(p, key, strlen(key), v, out, 1, &got));
            ASSERT_UEQ(got, 1);
            ASSERT_EQ(out[0], v);
        }
        seen[k] = v;
    }
    ASSERT_EQ(pthread_join(th, NULL), 0);
    check(p, &m, 0);
    close_with_indexer(p, dir);
}

TEST_MAIN(TEST(test_versions_and_reads_through_rolls_and_reopen),
          TEST(test_missing_torn_and_corrupt_files_are_rebuilt),
          TEST(test_retention_moves_versions), TEST(test_compaction_keeps_latest_and_versions),
          TEST(test_expected_versions), TEST(test_enabled_later_and_memory_bound),
          TEST(test_file_sorted_with_wrapped_keys), TEST(test_all_again_with_the_indexer_thread),
          TEST(test_indexer_catches_up_without_lookups), TEST(test_lookups_while_the_indexer_runs))
