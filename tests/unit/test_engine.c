/* Unit tests for the engine behind include/tidings.h (broker/engine.c, broker/iter.c,
 * storage/catalog.c, storage/topic_config.c). */
#include <dirent.h>
#include <errno.h>
#include <sqlite3.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/engine_int.h"
#include "storage/storage.h"
#include "test.h"
#include "tidings.h"

static void produce_values(td_engine *e, const char *topic, int32_t part, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        char v[32];
        snprintf(v, sizeof(v), "v%d", i);
        td_event ev = {.value = v, .value_len = strlen(v), .partition = part};
        ASSERT_OK(td_produce(e, topic, &ev, 1, NULL));
    }
}

static int read_count(td_engine *e, const char *topic, int32_t part, int64_t from)
{
    td_iter *it;
    ASSERT_OK(td_iter_open(e, topic, part, from, &it));
    td_event ev;
    int n = 0, rc;
    while ((rc = td_iter_next(it, &ev)) == 1)
        n++;
    ASSERT_EQ(rc, 0);
    td_iter_close(it);
    return n;
}

static void test_config_rules(void)
{
    td_topic_config c;
    td_topic_config_init(&c);
    for (const char *const *k = td_topic_config_keys(); *k; k++) {
        char v[64];
        ASSERT_OK(td_topic_config_get(&c, *k, v, sizeof(v)));
        td_topic_config c2;
        td_topic_config_init(&c2);
        td_config_entry e = {*k, v};
        ASSERT_OK(td_topic_config_apply(&c2, &e, 1));
        ASSERT_MEM_EQ(&c, &c2, sizeof(c));
    }
    td_config_entry ok[] = {{"fsync", "interval:250"}, {"retention.records", "10"}};
    ASSERT_OK(td_topic_config_apply(&c, ok, 2));
    static const struct {
        const char *v;
        int bits;
    } policies[] = {{"compact", TD_CLEANUP_COMPACT},
                    {"compact,delete", TD_CLEANUP_COMPACT | TD_CLEANUP_DELETE},
                    {"delete", TD_CLEANUP_DELETE}};
    for (size_t i = 0; i < TD_ARRAY_LEN(policies); i++) {
        td_config_entry e = {"cleanup.policy", policies[i].v};
        ASSERT_OK(td_topic_config_apply(&c, &e, 1));
        ASSERT_EQ(c.cleanup_policy, policies[i].bits);
    }
    ASSERT_EQ(c.fsync_policy, TD_FSYNC_INTERVAL);
    ASSERT_EQ(c.fsync_interval_ms, 250);
    ASSERT_EQ(c.retention_records, 10);
    static const char *bad[][2] = {{"fsync", "interval:0"}, {"segment.bytes", "1023"},
                                   {"segment.bytes", "3000000000"}, {"retention.ms", "abc"},
                                   {"retention.bytes", "-2"}, {"cleanup.policy", "compaction"},
                                   {"nope", "1"}, {"max.message.bytes", "-1"}};
    for (size_t i = 0; i < TD_ARRAY_LEN(bad); i++) {
        td_topic_config before = c;
        td_config_entry e = {bad[i][0], bad[i][1]};
        ASSERT_EQ(td_topic_config_apply(&c, &e, 1), TD_ECONFIG);
        ASSERT_CONTAINS(td_last_error(), bad[i][0]);
        ASSERT_MEM_EQ(&c, &before, sizeof(c));
    }
    char name[300];
    memset(name, 'a', 249);
    name[249] = 0;
    ASSERT_OK(td_topic_name_validate(name));
    name[249] = 'a';
    name[250] = 0;
    ASSERT_EQ(td_topic_name_validate(name), TD_ENAME);
    ASSERT_EQ(td_topic_name_validate(""), TD_ENAME);
    ASSERT_EQ(td_topic_name_validate(".."), TD_ENAME);
    ASSERT_EQ(td_topic_name_validate("a b"), TD_ENAME);
    ASSERT_OK(td_topic_name_validate("orders.eu-west_1"));
}

static void test_lock_and_format(void)
{
    char *dir = test_tmpdir("lock");
    td_engine *e = test_engine_open(dir), *e2;
    ASSERT_EQ(td_engine_open(dir, NULL, &e2), TD_ELOCKED);
    char pid[32];
    snprintf(pid, sizeof(pid), "process %ld", (long)getpid());
    ASSERT_CONTAINS(td_last_error(), pid);
    ASSERT_OK(td_topic_create(e, "t", 2, NULL, 0));
    td_engine_close(e);
    /* A newer format: refused, nothing changed. */
    char path[1024];
    snprintf(path, sizeof(path), "%s/FORMAT", dir);
    FILE *f = fopen(path, "w");
    fputs("tidings-data 99\n", f);
    fclose(f);
    char cmd[2048], before[8192] = {0}, after[8192] = {0};
    snprintf(cmd, sizeof(cmd), "cd '%s' && find . -type f -exec sha1sum {} + | sort", dir);
    FILE *p = popen(cmd, "r");
    ASSERT(fread(before, 1, sizeof(before) - 1, p) > 0);
    pclose(p);
    ASSERT_EQ(td_engine_open(dir, NULL, &e2), TD_EFORMAT);
    ASSERT_CONTAINS(td_last_error(), "format version 99");
    p = popen(cmd, "r");
    ASSERT(fread(after, 1, sizeof(after) - 1, p) > 0);
    pclose(p);
    ASSERT_STR_EQ(before, after);
    f = fopen(path, "w");
    fputs("tidings-data 1\n", f);
    fclose(f);
    e = test_engine_open(dir);
    td_topic_info info;
    ASSERT_OK(td_topic_describe(e, "t", &info));
    ASSERT_EQ(info.partitions, 2);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_topics_persist_delete_recreate(void)
{
    char *dir = test_tmpdir("topics");
    td_engine *e = test_engine_open(dir);
    td_config_entry cfg[] = {{"retention.ms", "1000"}, {"fsync", "none"}};
    ASSERT_OK(td_topic_create(e, "b", 3, cfg, 2));
    ASSERT_OK(td_topic_create(e, "a", 1, NULL, 0));
    ASSERT_EQ(td_topic_create(e, "a", 1, NULL, 0), TD_EEXIST);
    ASSERT_EQ(td_topic_create(e, "c", 0, NULL, 0), TD_EINVAL);
    ASSERT_EQ(td_topic_create(e, "bad/name", 1, NULL, 0), TD_ENAME);
    produce_values(e, "a", 0, 0, 5);
    ASSERT_OK(td_topic_add_partitions(e, "a", 4));
    ASSERT_EQ(td_topic_add_partitions(e, "a", 4), TD_EINVAL);
    td_config_entry alt[] = {{"retention.bytes", "4096"}};
    ASSERT_OK(td_topic_alter(e, "b", alt, 1));
    td_engine_close(e);
    e = test_engine_open(dir);
    td_topic_info *v;
    size_t n;
    ASSERT_OK(td_topic_list(e, &v, &n));
    ASSERT_EQ(n, 2);
    ASSERT_STR_EQ(v[0].name, "a");
    ASSERT_EQ(v[0].partitions, 4);
    ASSERT_EQ(v[1].config.retention_ms, 1000);
    ASSERT_EQ(v[1].config.retention_bytes, 4096);
    ASSERT_EQ(v[1].config.fsync_policy, TD_FSYNC_NONE);
    free(v);
    ASSERT_EQ(read_count(e, "a", 0, TD_OFFSET_EARLIEST), 5);
    /* An open iterator survives the delete and then reports it. */
    td_iter *it;
    ASSERT_OK(td_iter_open(e, "a", 0, 0, &it));
    ASSERT_OK(td_topic_delete(e, "a"));
    td_event ev;
    ASSERT_EQ(td_iter_next(it, &ev), TD_ENOTFOUND);
    ASSERT_OK(td_topic_create(e, "a", 1, NULL, 0));
    td_iter_close(it);
    ASSERT_EQ(read_count(e, "a", 0, TD_OFFSET_EARLIEST), 0);
    ASSERT_EQ(td_topic_delete(e, "zzz"), TD_ENOTFOUND);
    td_engine_close(e);
    /* A topic directory the catalog does not know (a crash mid-create) goes to the trash. */
    char path[1024];
    snprintf(path, sizeof(path), "%s/topics/ghost/0", dir);
    char cmd[1100];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", path);
    ASSERT_OK(system(cmd));
    e = test_engine_open(dir);
    struct stat st;
    snprintf(path, sizeof(path), "%s/topics/ghost", dir);
    ASSERT(stat(path, &st) != 0);
    ASSERT_EQ(read_count(e, "a", 0, TD_OFFSET_EARLIEST), 0);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_produce_routing_and_reads(void)
{
    char *dir = test_tmpdir("route");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "t", 5, NULL, 0));
    td_event ev[50];
    char keys[50][16];
    td_header h[2] = {{"h", 1, "x", 1}, {"n", 1, NULL, 0}};
    for (int i = 0; i < 50; i++) {
        snprintf(keys[i], sizeof(keys[i]), "key%d", i % 17);
        ev[i] = (td_event){.key = keys[i], .key_len = strlen(keys[i]), .value = i % 9 ? "v" : NULL,
                           .value_len = i % 9 ? 1 : 0, .headers = h, .header_count = 2,
                           .timestamp_ms = 1000 + i, .partition = TD_PARTITION_ANY};
    }
    td_produce_result res[50];
    ASSERT_OK(td_produce(e, "t", ev, 50, res));
    int64_t count[5] = {0};
    for (int i = 0; i < 50; i++) {
        ASSERT_EQ(res[i].partition, td_partition_for_key(keys[i], strlen(keys[i]), 5));
        ASSERT_EQ(res[i].offset, count[res[i].partition]++);
    }
    /* Read back every partition and compare with what was written. */
    for (int32_t p = 0; p < 5; p++) {
        td_iter *it;
        ASSERT_OK(td_iter_open(e, "t", p, TD_OFFSET_EARLIEST, &it));
        td_event got;
        int i = 0;
        for (int k = 0; k < 50; k++) {
            if (res[k].partition != p)
                continue;
            ASSERT_EQ(td_iter_next(it, &got), 1);
            ASSERT_EQ(got.offset, res[k].offset);
            ASSERT_EQ(got.timestamp_ms, 1000 + k);
            ASSERT_EQ(got.key_len, strlen(keys[k]));
            ASSERT_MEM_EQ(got.key, keys[k], got.key_len);
            ASSERT_EQ(got.value == NULL, ev[k].value == NULL);
            ASSERT_EQ(got.header_count, 2);
            ASSERT(got.headers[1].value == NULL);
            i++;
        }
        ASSERT_EQ(td_iter_next(it, &got), 0);
        ASSERT_EQ(i, count[p]);
        td_iter_close(it);
    }
    /* Unkeyed events of one call share a partition; calls rotate. */
    td_event nk[3] = {{.value = "a", .value_len = 1, .partition = TD_PARTITION_ANY},
                      {.value = "b", .value_len = 1, .partition = TD_PARTITION_ANY},
                      {.value = "c", .value_len = 1, .partition = TD_PARTITION_ANY}};
    int used[5] = {0};
    for (int call = 0; call < 10; call++) {
        ASSERT_OK(td_produce(e, "t", nk, 3, res));
        ASSERT_EQ(res[0].partition, res[2].partition);
        ASSERT_EQ(res[1].offset, res[0].offset + 1);
        used[res[0].partition]++;
    }
    for (int p = 0; p < 5; p++)
        ASSERT_EQ(used[p], 2);
    /* Offsets and errors. */
    int64_t off;
    ASSERT_OK(td_offset_for(e, "t", 0, TD_OFFSET_EARLIEST, &off));
    ASSERT_EQ(off, 0);
    ASSERT_OK(td_offset_for_time(e, "t", 0, 1 << 30, &off));
    td_iter *it;
    ASSERT_EQ(td_iter_open(e, "t", 0, 1 << 20, &it), TD_ERANGE);
    ASSERT_EQ(td_iter_open(e, "t", 9, 0, &it), TD_ENOTFOUND);
    td_event bad = {.value = "x", .value_len = 1, .partition = 7};
    ASSERT_EQ(td_produce(e, "t", &bad, 1, NULL), TD_ENOTFOUND);
    ASSERT_EQ(td_produce(e, "nope", &bad, 1, NULL), TD_ENOTFOUND);
    /* An iterator sees events appended after it was opened. */
    ASSERT_OK(td_iter_open(e, "t", 0, TD_OFFSET_LATEST, &it));
    td_event got;
    ASSERT_EQ(td_iter_next(it, &got), 0);
    produce_values(e, "t", 0, 0, 3);
    ASSERT_EQ(td_iter_next(it, &got), 1);
    ASSERT_EQ(got.value_len, 2);
    td_iter_close(it);
    td_engine_close(e);
    test_rmrf(dir);
}

/* Events that together exceed max.message.bytes are written as several batches, in order; one
 * event too big alone is refused. */
static void test_produce_splits_batches(void)
{
    char *dir = test_tmpdir("split");
    td_engine *e = test_engine_open(dir);
    td_config_entry cfg[] = {{"max.message.bytes", "4096"}};
    ASSERT_OK(td_topic_create(e, "s", 2, cfg, 1));
    enum { N = 300 };
    static td_event ev[N];
    static char vals[N][120];
    td_header h = {"trace", 5, "abc", 3};
    for (int i = 0; i < N; i++) {
        memset(vals[i], 'a' + i % 26, sizeof(vals[i]));
        snprintf(vals[i], sizeof(vals[i]), "%03d", i);
        ev[i] = (td_event){.value = vals[i],
                           .value_len = 100 + (size_t)(i % 20),
                           .headers = &h,
                           .header_count = 1,
                           .partition = i % 3 ? 0 : 1};
    }
    static td_produce_result res[N];
    ASSERT_OK(td_produce(e, "s", ev, N, res));
    int64_t next[2] = {0, 0};
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(res[i].partition, i % 3 ? 0 : 1);
        ASSERT_EQ(res[i].offset, next[res[i].partition]++);
    }
    for (int32_t p = 0; p < 2; p++) {
        td_iter *it;
        ASSERT_OK(td_iter_open(e, "s", p, TD_OFFSET_EARLIEST, &it));
        td_event got;
        for (int i = 0; i < N; i++) {
            if (res[i].partition != p)
                continue;
            ASSERT_EQ(td_iter_next(it, &got), 1);
            ASSERT_EQ(got.value_len, ev[i].value_len);
            ASSERT_MEM_EQ(got.value, vals[i], got.value_len);
        }
        ASSERT_EQ(td_iter_next(it, &got), 0);
        td_iter_close(it);
    }
    static char big[5000];
    td_event one = {.value = big, .value_len = sizeof(big), .partition = 0};
    ASSERT_EQ(td_produce(e, "s", &one, 1, NULL), TD_ETOOBIG);
    td_partition_info pi;
    ASSERT_OK(td_partition_describe(e, "s", 0, &pi));
    ASSERT_EQ(pi.high_watermark, 200); /* nothing of the refused event */
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_offset_reset(void)
{
    char *dir = test_tmpdir("reset");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "r", 1, NULL, 0));
    for (int i = 0; i < 10; i++) {
        td_event ev = {
            .value = "v", .value_len = 1, .partition = 0, .timestamp_ms = 1000 * (i + 1)};
        ASSERT_OK(td_produce(e, "r", &ev, 1, NULL));
    }
    ASSERT_OK(td_delete_records(e, "r", 0, 3, NULL));
    int64_t off;
    ASSERT_OK(td_offset_reset(e, "r", 0, TD_RESET_EARLIEST, 0, &off));
    ASSERT_EQ(off, 3);
    ASSERT_OK(td_offset_reset(e, "r", 0, TD_RESET_LATEST, 0, &off));
    ASSERT_EQ(off, 10);
    ASSERT_OK(td_offset_reset(e, "r", 0, TD_RESET_OFFSET, 1, &off));
    ASSERT_EQ(off, 3); /* kept within the log */
    ASSERT_OK(td_offset_reset(e, "r", 0, TD_RESET_OFFSET, 99, &off));
    ASSERT_EQ(off, 10);
    ASSERT_OK(td_offset_reset(e, "r", 0, TD_RESET_OFFSET, 5, &off));
    ASSERT_EQ(off, 5);
    ASSERT_OK(td_offset_reset(e, "r", 0, TD_RESET_TIME, 7500, &off));
    ASSERT_EQ(off, 7);
    ASSERT_EQ(td_offset_reset(e, "r", 0, 42, 0, &off), TD_EINVAL);
    ASSERT_EQ(td_offset_reset(e, "r", 1, TD_RESET_LATEST, 0, &off), TD_ENOTFOUND);
    td_engine_close(e);
    test_rmrf(dir);
}

struct prod {
    td_engine *e;
    int id;
};

static void *producer(void *arg)
{
    struct prod *p = arg;
    for (int i = 0; i < 50; i++) {
        char v[32];
        snprintf(v, sizeof(v), "%d:%d", p->id, i);
        td_event ev = {.value = v, .value_len = strlen(v), .partition = 0};
        ASSERT_OK(td_produce(p->e, "c", &ev, 1, NULL));
    }
    return NULL;
}

static void test_concurrent_producers(void)
{
    char *dir = test_tmpdir("conc");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "c", 1, NULL, 0));
    pthread_t th[16];
    struct prod ps[16];
    for (int i = 0; i < 16; i++) {
        ps[i] = (struct prod){e, i};
        pthread_create(&th[i], NULL, producer, &ps[i]);
    }
    for (int i = 0; i < 16; i++)
        pthread_join(th[i], NULL);
    /* Each producer's events are all there, once, in its order. */
    int next[16] = {0};
    td_iter *it;
    ASSERT_OK(td_iter_open(e, "c", 0, 0, &it));
    td_event ev;
    int n = 0;
    while (td_iter_next(it, &ev) == 1) {
        int id, seq;
        char v[32];
        snprintf(v, sizeof(v), "%.*s", (int)ev.value_len, (const char *)ev.value);
        ASSERT_EQ(sscanf(v, "%d:%d", &id, &seq), 2);
        ASSERT_EQ(seq, next[id]);
        next[id]++;
        n++;
    }
    td_iter_close(it);
    ASSERT_EQ(n, 16 * 50);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_retention_and_background(void)
{
    char *dir = test_tmpdir("bg");
    td_options o;
    td_options_init(&o);
    o.retention_check_ms = 10;
    o.scrub_bytes_per_sec = 1 << 20;
    td_engine *e;
    ASSERT_OK(td_engine_open(dir, &o, &e));
    td_config_entry cfg[] = {{"segment.bytes", "1024"}, {"retention.records", "20"},
                             {"fsync", "interval:5"}};
    ASSERT_OK(td_topic_create(e, "r", 1, cfg, 3));
    produce_values(e, "r", 0, 0, 200);
    /* The background thread enforces retention within a bounded wait. */
    int64_t start = -1;
    for (int i = 0; i < 500 && start <= 0; i++) {
        usleep(10000);
        ASSERT_OK(td_offset_for(e, "r", 0, TD_OFFSET_EARLIEST, &start));
    }
    ASSERT(start > 0);
    /* Retention keeps running every 10 ms: let it settle (start unchanged for 100 ms) before
     * comparing what a read sees with the start. */
    for (int i = 0, still = 0; i < 500 && still < 10; i++) {
        usleep(10000);
        int64_t now;
        ASSERT_OK(td_offset_for(e, "r", 0, TD_OFFSET_EARLIEST, &now));
        still = now == start ? still + 1 : 0;
        start = now;
    }
    ASSERT_LE(start, 180);
    td_iter *it;
    ASSERT_EQ(td_iter_open(e, "r", 0, 0, &it), TD_ERANGE);
    ASSERT_EQ(read_count(e, "r", 0, TD_OFFSET_EARLIEST), 200 - start);
    ASSERT_OK(td_engine_flush(e));
    td_engine_close(e);
    test_rmrf(dir);
}

/* DeleteRecords: the log start moves, reads below it fail, whole segments go, and all of it
 * survives a restart; retention later never moves the start back. */
static void test_delete_records(void)
{
    char *dir = test_tmpdir("delrec");
    td_engine *e = test_engine_open(dir);
    td_config_entry cfg[] = {{"segment.bytes", "1024"}, {"fsync", "none"}};
    ASSERT_OK(td_topic_create(e, "d", 2, cfg, 2));
    produce_values(e, "d", 0, 0, 300);
    td_partition_info before;
    ASSERT_OK(td_partition_describe(e, "d", 0, &before));
    ASSERT(before.segments > 3);
    int64_t ls = -5;
    ASSERT_EQ(td_delete_records(e, "d", 0, 301, &ls), TD_ERANGE);
    ASSERT_EQ(td_delete_records(e, "d", 0, -7, NULL), TD_ERANGE);
    ASSERT_EQ(td_delete_records(e, "nope", 0, 1, NULL), TD_ENOTFOUND);
    ASSERT_EQ(td_delete_records(e, "d", 9, 1, NULL), TD_ENOTFOUND);
    ASSERT_OK(td_delete_records(e, "d", 0, 137, &ls));
    ASSERT_EQ(ls, 137);
    /* Lower than the start: nothing changes. */
    ASSERT_OK(td_delete_records(e, "d", 0, 20, &ls));
    ASSERT_EQ(ls, 137);
    td_partition_info after;
    ASSERT_OK(td_partition_describe(e, "d", 0, &after));
    ASSERT_EQ(after.log_start_offset, 137);
    ASSERT(after.segments < before.segments);
    ASSERT(after.size_bytes < before.size_bytes);
    td_iter *it;
    ASSERT_EQ(td_iter_open(e, "d", 0, 136, &it), TD_ERANGE);
    ASSERT_OK(td_iter_open(e, "d", 0, TD_OFFSET_EARLIEST, &it));
    td_event ev;
    ASSERT_EQ(td_iter_next(it, &ev), 1);
    ASSERT_EQ(ev.offset, 137); /* mid-batch and mid-segment: the first kept record */
    ASSERT_MEM_EQ(ev.value, "v137", 4);
    td_iter_close(it);
    ASSERT_EQ(read_count(e, "d", 0, TD_OFFSET_EARLIEST), 300 - 137);
    int64_t off;
    ASSERT_OK(td_offset_for_time(e, "d", 0, 0, &off));
    ASSERT_EQ(off, 137);
    /* The other partition is untouched. */
    ASSERT_OK(td_offset_for(e, "d", 1, TD_OFFSET_EARLIEST, &off));
    ASSERT_EQ(off, 0);
    td_engine_close(e);

    e = test_engine_open(dir);
    ASSERT_OK(td_offset_for(e, "d", 0, TD_OFFSET_EARLIEST, &off));
    ASSERT_EQ(off, 137);
    ASSERT_EQ(read_count(e, "d", 0, TD_OFFSET_EARLIEST), 300 - 137);
    /* Everything, then more events: they start at the old end. */
    ASSERT_OK(td_delete_records(e, "d", 0, TD_OFFSET_LATEST, &ls));
    ASSERT_EQ(ls, 300);
    ASSERT_EQ(read_count(e, "d", 0, TD_OFFSET_EARLIEST), 0);
    produce_values(e, "d", 0, 300, 5);
    ASSERT_EQ(read_count(e, "d", 0, TD_OFFSET_EARLIEST), 5);
    ASSERT_OK(td_engine_enforce_retention(e));
    ASSERT_OK(td_offset_for(e, "d", 0, TD_OFFSET_EARLIEST, &off));
    ASSERT_EQ(off, 300);
    td_engine_close(e);
    e = test_engine_open(dir);
    ASSERT_OK(td_offset_for(e, "d", 0, TD_OFFSET_EARLIEST, &off));
    ASSERT_EQ(off, 300);
    ASSERT_OK(td_offset_for(e, "d", 0, TD_OFFSET_LATEST, &off));
    ASSERT_EQ(off, 305);
    td_engine_close(e);
    test_rmrf(dir);
}

/* Committed offsets: atomic commits, reads, listing, persistence, topic deletion, upgrade of a
 * version 1 catalog. */
static void test_group_offsets(void)
{
    char *dir = test_tmpdir("groups");
    td_engine *e = test_engine_open(dir);
    ASSERT_OK(td_topic_create(e, "a", 3, NULL, 0));
    ASSERT_OK(td_topic_create(e, "b", 1, NULL, 0));
    char big[TD_OFFSET_METADATA_MAX + 2];
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    td_offset_commit c[] = {{"b", 0, 7, -1, NULL}, {"a", 2, 100, 3, "host-1"}, {"a", 0, 0, -1, ""}};
    ASSERT_OK(td_group_commit(e, "g1", c, 3, 1000));
    /* One bad entry fails the whole call and commits nothing. */
    td_offset_commit bad[][2] = {{{"a", 1, 5, -1, NULL}, {"nope", 0, 1, -1, NULL}},
                                 {{"a", 1, 5, -1, NULL}, {"a", 3, 1, -1, NULL}},
                                 {{"a", 1, 5, -1, NULL}, {"a", 0, 1, -1, big}}};
    int want[] = {TD_ENOTFOUND, TD_ENOTFOUND, TD_ETOOBIG};
    for (size_t i = 0; i < 3; i++)
        ASSERT_EQ(td_group_commit(e, "g1", bad[i], 2, 0), want[i]);
    int64_t off;
    ASSERT_EQ(td_group_committed(e, "g1", "a", 1, &off), TD_ENOTFOUND);
    /* Negative offsets are kept as given, as Kafka keeps them (kafkajs commits -2 to reset a
     * group to the earliest offsets). */
    td_offset_commit neg = {"a", 1, -2, -1, NULL};
    ASSERT_OK(td_group_commit(e, "neg", &neg, 1, 0));
    ASSERT_OK(td_group_committed(e, "neg", "a", 1, &off));
    ASSERT_EQ(off, -2);
    ASSERT_OK(td_group_delete(e, "neg"));
    ASSERT_EQ(td_group_commit(e, "", c, 1, 0), TD_ENAME);
    big[TD_GROUP_NAME_MAX + 1] = 0;
    ASSERT_EQ(td_group_commit(e, big, c, 1, 0), TD_ENAME);
    /* Metadata of exactly the limit is fine. */
    memset(big, 'm', TD_OFFSET_METADATA_MAX);
    big[TD_OFFSET_METADATA_MAX] = 0;
    td_offset_commit edge = {"a", 1, 9, -1, big};
    ASSERT_OK(td_group_commit(e, "g2", &edge, 1, 0));
    /* Lag: the high watermark minus the commit, never below 0. */
    produce_values(e, "b", 0, 0, 10);
    produce_values(e, "a", 0, 0, 4);
    td_group_lag_info *lag;
    size_t nlag;
    ASSERT_OK(td_group_lag(e, "g1", &lag, &nlag));
    ASSERT_UEQ(nlag, 3);
    ASSERT_STR_EQ(lag[0].topic, "a");
    ASSERT_EQ(lag[0].partition, 0);
    ASSERT_EQ(lag[0].high_watermark, 4);
    ASSERT_EQ(lag[0].lag, 4);
    ASSERT_EQ(lag[1].committed, 100);
    ASSERT_EQ(lag[1].lag, 0); /* committed beyond the log end */
    ASSERT_STR_EQ(lag[2].topic, "b");
    ASSERT_EQ(lag[2].lag, 3);
    ASSERT_EQ(lag[2].commit_ms, 1000);
    free(lag);
    ASSERT_OK(td_group_lag(e, "nobody", &lag, &nlag));
    ASSERT_UEQ(nlag, 0);
    free(lag);
    /* A later commit replaces the earlier one. */
    td_offset_commit again = {"b", 0, 8, 1, "x"};
    ASSERT_OK(td_group_commit(e, "g1", &again, 1, 2000));
    td_committed_offset *v;
    size_t n;
    ASSERT_OK(td_group_offsets(e, "g1", &v, &n));
    ASSERT_EQ(n, 3);
    ASSERT_STR_EQ(v[0].topic, "a");
    ASSERT_EQ(v[0].partition, 0);
    ASSERT_EQ(v[0].offset, 0);
    ASSERT_STR_EQ(v[0].metadata, "");
    ASSERT_EQ(v[1].partition, 2);
    ASSERT_EQ(v[1].offset, 100);
    ASSERT_EQ(v[1].leader_epoch, 3);
    ASSERT_STR_EQ(v[1].metadata, "host-1");
    ASSERT_EQ(v[1].commit_ms, 1000);
    ASSERT_STR_EQ(v[2].topic, "b");
    ASSERT_EQ(v[2].offset, 8);
    ASSERT_STR_EQ(v[2].metadata, "x");
    ASSERT_EQ(v[2].commit_ms, 2000);
    free(v);
    ASSERT_OK(td_group_offsets(e, "none", &v, &n));
    ASSERT_EQ(n, 0);
    td_engine_close(e);

    /* Durable across a reopen; listing; deleting a topic takes its offsets along. */
    e = test_engine_open(dir);
    ASSERT_OK(td_group_committed(e, "g2", "a", 1, &off));
    ASSERT_EQ(off, 9);
    ASSERT_OK(td_group_offsets(e, "g2", &v, &n));
    ASSERT_EQ(n, 1);
    ASSERT_EQ(strlen(v[0].metadata), TD_OFFSET_METADATA_MAX);
    free(v);
    td_group_info *gi;
    ASSERT_OK(td_group_list(e, &gi, &n));
    ASSERT_EQ(n, 2);
    ASSERT_STR_EQ(gi[0].name, "g1");
    ASSERT_EQ(gi[0].offsets, 3);
    ASSERT_EQ(gi[0].last_commit_ms, 2000);
    ASSERT_STR_EQ(gi[1].name, "g2");
    free(gi);
    ASSERT_OK(td_topic_delete(e, "a"));
    ASSERT_OK(td_topic_create(e, "a", 3, NULL, 0));
    ASSERT_EQ(td_group_committed(e, "g1", "a", 2, &off), TD_ENOTFOUND);
    ASSERT_OK(td_group_committed(e, "g1", "b", 0, &off));
    ASSERT_EQ(off, 8);
    ASSERT_OK(td_group_list(e, &gi, &n));
    ASSERT_EQ(n, 1); /* g2 had only offsets of the deleted topic */
    free(gi);
    ASSERT_OK(td_group_delete(e, "g1"));
    ASSERT_EQ(td_group_delete(e, "g1"), TD_ENOTFOUND);
    ASSERT_OK(td_group_commit(e, "g3", c, 1, 0));
    td_engine_close(e);

    /* A version 1 catalog (before offsets existed) is upgraded in place; the offsets are no
     * longer the catalog's (they live in __consumer_offsets), so they stay. */
    char path[1024];
    snprintf(path, sizeof(path), "%s/catalog.db", dir);
    sqlite3 *db;
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "DROP TABLE offsets; PRAGMA user_version=1;", NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);
    e = test_engine_open(dir);
    ASSERT_OK(td_group_offsets(e, "g3", &v, &n));
    ASSERT_EQ(n, 1);
    free(v);
    ASSERT_OK(td_group_commit(e, "g3", c, 1, 0));
    ASSERT_OK(td_group_committed(e, "g3", "b", 0, &off));
    ASSERT_EQ(off, 7);
    td_engine_close(e);
    test_rmrf(dir);
}

/* Reads a partition's recovery point file; -1 if there is none. */
static int64_t read_recovery_point(const char *dir, const char *topic)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/topics/%s/0/recovery-point", dir, topic);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long long v = -1;
    ASSERT_EQ(fscanf(f, "%lld", &v), 1);
    fclose(f);
    return v;
}

/* The background thread pays the seal of a rolled segment (its fsync and index files) and moves
 * the partition's recovery point: under fsync=none after none_seal_delay_ms, which defaults to
 * 30 s; at close in any case. */
static void test_background_pays_seals(void)
{
    char *dir = test_tmpdir("seal");
    char idx[1024];
    snprintf(idx, sizeof(idx), "%s/topics/s/0/%020d.index", dir, 0);
    td_options o;
    td_options_init(&o);
    ASSERT_EQ(o.none_seal_delay_ms, 30000);
    td_engine *e;
    ASSERT_OK(td_engine_open(dir, &o, &e));
    td_config_entry cfg[] = {{"segment.bytes", "1024"}, {"fsync", "none"}};
    ASSERT_OK(td_topic_create(e, "s", 1, cfg, 2));
    produce_values(e, "s", 0, 0, 100);
    td_partition_info pi;
    ASSERT_OK(td_partition_describe(e, "s", 0, &pi));
    ASSERT(pi.segments >= 3);
    /* Default delay: a few ticks later the seals are still owed. */
    usleep(200000);
    ASSERT_EQ(read_recovery_point(dir, "s"), 0);
    ASSERT(access(idx, F_OK) != 0);
    td_engine_close(e); /* pays them */
    ASSERT_EQ(access(idx, F_OK), 0);
    ASSERT(read_recovery_point(dir, "s") > 0);
    /* No delay: paid within a bounded wait. */
    o.none_seal_delay_ms = 0;
    ASSERT_OK(td_engine_open(dir, &o, &e));
    int64_t before = read_recovery_point(dir, "s");
    produce_values(e, "s", 0, 100, 100);
    int64_t point = before;
    for (int i = 0; i < 500 && point == before; i++) {
        usleep(10000);
        point = read_recovery_point(dir, "s");
    }
    ASSERT(point > before); /* past every rolled segment */
    int64_t end;
    ASSERT_OK(td_offset_for(e, "s", 0, TD_OFFSET_LATEST, &end));
    ASSERT(point <= end);
    td_engine_close(e);
    test_rmrf(dir);
}

/* The engine's metrics as text (valid until the next call). */
static const char *metrics_text(td_engine *e)
{
    static td_metrics_out out;
    td_buf_free(&out.buf);
    memset(&out, 0, sizeof(out));
    ASSERT_OK(td_metrics_render(broker_metrics(e), &out));
    td_buf_append_u8(&out.buf, 0);
    return (const char *)out.buf.p;
}

/* A released disk reserve (as a deletion on a full disk leaves it): appends fail until it is
 * whole again, which the background thread sees to within a second, without a restart. */
static void test_reserve_restored_in_background(void)
{
    char *dir = test_tmpdir("eng-reserve");
    char path[600];
    snprintf(path, sizeof(path), "%s/reserve", dir);
    td_options o;
    td_options_init(&o);
    ASSERT_EQ(o.disk_reserve_bytes, 8 << 20);
    o.disk_reserve_bytes = 1 << 20;
    td_engine *e;
    ASSERT_OK(td_engine_open(dir, &o, &e));
    struct stat st;
    ASSERT_OK(stat(path, &st));
    ASSERT_EQ(st.st_size, 1 << 20);
    ASSERT_OK(td_topic_create(e, "t", 1, NULL, 0));
    ASSERT(strstr(metrics_text(e), "\ntidings_disk_reserve_whole 1\n"));
    ASSERT_OK(reserve_release(e->reserve, "a test"));
    ASSERT(strstr(metrics_text(e), "\ntidings_disk_reserve_bytes 0\n"));
    ASSERT(strstr(metrics_text(e), "\ntidings_disk_reserve_whole 0\n"));
    td_event ev = {.value = "v", .value_len = 1};
    ASSERT_EQ(td_produce(e, "t", &ev, 1, NULL), -ENOSPC);
    int rc;
    int64_t deadline = td_mono_ms() + 10000;
    while ((rc = td_produce(e, "t", &ev, 1, NULL)) == -ENOSPC && td_mono_ms() < deadline)
        usleep(10000);
    ASSERT_OK(rc);
    ASSERT_OK(stat(path, &st));
    ASSERT_EQ(st.st_size, 1 << 20);
    ASSERT(strstr(metrics_text(e), "\ntidings_disk_reserve_bytes 1048576\n"));
    td_engine_close(e);
    /* The command line's local mode keeps the reserve as the broker sized it. */
    o.disk_reserve_bytes = -1;
    o.no_background = 1;
    ASSERT_OK(td_engine_open(dir, &o, &e));
    ASSERT_OK(stat(path, &st));
    ASSERT_EQ(st.st_size, 1 << 20);
    ASSERT_EQ(read_count(e, "t", 0, 0), 1);
    td_engine_close(e);
    test_rmrf(dir);
}

/* Creating, deleting or growing a topic of many partitions takes long (a directory, files and
 * fsyncs per partition); other administrative calls must not wait for it. The protocol fuzzer
 * found one CreateTopics of 32 769 partitions holding the administration lock for minutes while
 * every event loop waited on it (ListGroups, other topics), then a DeleteTopics of the same
 * topic waiting for it, then the deletion of a topic of thousands of partitions doing the same.
 * The slow change runs on a thread over an io table that holds it in the middle of its files
 * (making partition SLOW_GATE_PART's directory, or removing the first of its files from the
 * trash) until the calls here have returned: so the change is under way for as long as they
 * take, however fast the disk, without making thousands of partitions. Where the change keeps
 * the administration lock over its files, the calls wait until the gate lets go by itself after
 * SLOW_GATE_MS, which the test sees. */
enum { SLOW_CREATE, SLOW_DELETE, SLOW_GROW };
#define SLOW_PARTITIONS 16
#define SLOW_GATE_PART 3
#define SLOW_GATE_MS 30000

struct slow_admin {
    td_engine *e;
    const char *name;
    int32_t partitions;
    int kind;
    int rc;
    int done; /* atomic */
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    td_io io;             /* the real file system, with the gate */
    char create_end[64];  /* a directory made with this suffix waits (create, grow) */
    char delete_part[64]; /* a file or directory removed with this in its path waits */
    bool reached, open, timed_out;
} gate = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
static _Thread_local bool gated_thread; /* the slow change's thread */

/* Holds the slow change's thread at the gate until it opens, SLOW_GATE_MS at most. */
static void gate_wait(void)
{
    pthread_mutex_lock(&gate.mu);
    gate.reached = true;
    pthread_cond_broadcast(&gate.cv);
    int64_t deadline = td_mono_ms() + SLOW_GATE_MS;
    while (!gate.open && td_mono_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&gate.cv, &gate.mu, &ts);
    }
    if (!gate.open)
        gate.timed_out = true; /* the calls were held up by the change */
    gate.open = true;          /* once: the rest of the change goes at full speed */
    pthread_mutex_unlock(&gate.mu);
}

/* Holds the slow change's thread if the gate is armed and path is where it waits: made with
 * (mkdir) the create_end suffix, or removed with delete_part in it. */
static void gate_check(const char *path, bool made)
{
    pthread_mutex_lock(&gate.mu);
    const char *want = made ? gate.create_end : gate.delete_part;
    size_t n = strlen(path), m = strlen(want);
    bool hit = gated_thread && !gate.open && m &&
               (made ? n >= m && !strcmp(path + n - m, want) : strstr(path, want) != NULL);
    pthread_mutex_unlock(&gate.mu);
    if (hit)
        gate_wait();
}

static int gated_mkdir(const td_io *io, const char *path, int mode)
{
    gate_check(path, true);
    return td_io_posix()->mkdir(io, path, mode);
}

static int gated_unlink(const td_io *io, const char *path)
{
    gate_check(path, false);
    return td_io_posix()->unlink(io, path);
}

static int gated_rmdir(const td_io *io, const char *path)
{
    gate_check(path, false);
    return td_io_posix()->rmdir(io, path);
}

/* Arms the gate for the next change of topic name. */
static void gate_arm(int kind, const char *name)
{
    pthread_mutex_lock(&gate.mu);
    gate.create_end[0] = gate.delete_part[0] = 0;
    if (kind == SLOW_DELETE)
        snprintf(gate.delete_part, sizeof(gate.delete_part), "/trash/%s.", name);
    else
        snprintf(gate.create_end, sizeof(gate.create_end), "/topics/%s/%d", name, SLOW_GATE_PART);
    gate.reached = gate.open = gate.timed_out = false;
    pthread_mutex_unlock(&gate.mu);
}

/* Waits until the slow change is at the gate, SLOW_GATE_MS at most: whether it is. */
static bool gate_wait_reached(void)
{
    pthread_mutex_lock(&gate.mu);
    int64_t deadline = td_mono_ms() + SLOW_GATE_MS;
    while (!gate.reached && td_mono_ms() < deadline) {
        pthread_mutex_unlock(&gate.mu);
        usleep(1000);
        pthread_mutex_lock(&gate.mu);
    }
    bool reached = gate.reached;
    pthread_mutex_unlock(&gate.mu);
    return reached;
}

/* Opens the gate; false if the change had let go by itself (SLOW_GATE_MS passed). */
static bool gate_open(void)
{
    pthread_mutex_lock(&gate.mu);
    bool held = !gate.timed_out;
    gate.open = true;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
    return held;
}

static void *slow_admin_main(void *arg)
{
    struct slow_admin *a = arg;
    gated_thread = true;
    a->rc = a->kind == SLOW_CREATE   ? td_topic_create(a->e, a->name, a->partitions, NULL, 0)
            : a->kind == SLOW_DELETE ? td_topic_delete(a->e, a->name)
                                     : td_topic_add_partitions(a->e, a->name, a->partitions);
    __atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Waits (a minute at most) until dir/topics/topic/partition exists, or with gone, does not. */
static void wait_for_dir(const char *dir, const char *topic, int32_t partition, bool gone)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/topics/%s/%" PRId32, dir, topic, partition);
    struct stat st;
    for (int i = 0; (stat(path, &st) == 0) == gone; i++) {
        ASSERT(i < 60000);
        usleep(1000);
    }
}

static void test_slow_topic_changes_do_not_block_others(void)
{
    int32_t n = SLOW_PARTITIONS;
    char *dir = test_tmpdir("slowadmin");
    gate.io = *td_io_posix();
    gate.io.mkdir = gated_mkdir;
    gate.io.unlink = gated_unlink;
    gate.io.rmdir = gated_rmdir;
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    td_engine *e;
    ASSERT_OK(engine_open_io(dir, &o, &gate.io, &e));
    for (int kind = SLOW_CREATE; kind <= SLOW_GROW; kind++) {
        if (kind == SLOW_GROW)
            ASSERT_OK(td_topic_create(e, "grows", 1, NULL, 0));
        struct slow_admin a = {e, kind == SLOW_GROW ? "grows" : "big", n, kind, 0, 0};
        gate_arm(kind, a.name);
        pthread_t th;
        ASSERT_EQ(pthread_create(&th, NULL, slow_admin_main, &a), 0);
        /* Under way: its first partitions made (or, deleted, moved to the trash), and held in
         * the middle of its files. */
        wait_for_dir(dir, a.name, kind == SLOW_GROW ? 2 : 1, kind == SLOW_DELETE);
        ASSERT(gate_wait_reached());
        char other[32];
        snprintf(other, sizeof(other), "other%d", kind);
        ASSERT_OK(td_topic_create(e, other, 1, NULL, 0));
        td_config_entry c = {"retention.ms", "60000"};
        ASSERT_OK(td_topic_alter(e, other, &c, 1));
        td_offset_commit oc = {.topic = other, .partition = 0, .offset = 0};
        ASSERT_OK(td_group_commit(e, "g", &oc, 1, 1700000000000));
        td_group_info *gi;
        size_t ng;
        ASSERT_OK(td_group_list(e, &gi, &ng));
        free(gi);
        ASSERT_OK(td_topic_delete(e, other));
        td_config_entry cb = {"retention.ms", "1000"};
        if (kind == SLOW_DELETE) {
            /* Deleted, the name is free at once, while the old files are being removed. */
            ASSERT_OK(td_topic_create(e, a.name, 1, NULL, 0));
            ASSERT_OK(td_topic_delete(e, a.name));
        } else {
            /* Another change of the same topic is refused at once, not waited for: the topic
             * does not exist yet, or is getting its partitions. */
            int want = kind == SLOW_GROW ? TD_EINVAL : TD_ENOTFOUND;
            ASSERT_EQ(td_topic_create(e, a.name, 1, NULL, 0), TD_EEXIST);
            ASSERT_EQ(td_topic_add_partitions(e, a.name, n + 1), want);
            ASSERT_EQ(td_topic_alter(e, a.name, &cb, 1), want);
            ASSERT_EQ(td_topic_delete(e, a.name), want);
        }
        /* All returned while the change was held at the gate. */
        ASSERT_EQ(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE), 0);
        ASSERT(gate_open());
        pthread_join(th, NULL);
        ASSERT_OK(a.rc);
        td_topic_info ti;
        if (kind == SLOW_DELETE) {
            ASSERT_EQ(td_topic_describe(e, a.name, &ti), TD_ENOTFOUND);
        } else {
            ASSERT_OK(td_topic_describe(e, a.name, &ti));
            ASSERT_EQ(ti.partitions, a.partitions);
        }
    }
    ASSERT_OK(td_topic_delete(e, "grows"));
    td_engine_close(e);
    test_rmrf(dir);
}

/* td_options.max_partitions: creating or growing past it fails with TD_EINVAL and makes nothing;
 * deleting makes room. */
static void test_max_partitions(void)
{
    char *dir = test_tmpdir("eng-maxparts");
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    o.max_partitions = 5;
    td_engine *e;
    ASSERT_OK(td_engine_open(dir, &o, &e));
    ASSERT_OK(td_topic_create(e, "a", 3, NULL, 0));
    ASSERT_EQ(td_topic_create(e, "b", 3, NULL, 0), TD_EINVAL);
    ASSERT(strstr(td_last_error(), "max.partitions 5"));
    td_topic_info ti;
    ASSERT_EQ(td_topic_describe(e, "b", &ti), TD_ENOTFOUND);
    ASSERT_OK(td_topic_add_partitions(e, "a", 5));
    ASSERT_EQ(td_topic_add_partitions(e, "a", 6), TD_EINVAL);
    ASSERT_EQ(td_topic_create(e, "c", 1, NULL, 0), TD_EINVAL);
    ASSERT_OK(td_topic_delete(e, "a"));
    ASSERT_OK(td_topic_create(e, "b", 3, NULL, 0));
    ASSERT_OK(td_topic_create(e, "c", 2, NULL, 0));
    td_engine_close(e);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_config_rules), TEST(test_delete_records), TEST(test_group_offsets),
          TEST(test_lock_and_format), TEST(test_topics_persist_delete_recreate),
          TEST(test_produce_routing_and_reads), TEST(test_produce_splits_batches),
          TEST(test_offset_reset), TEST(test_concurrent_producers),
          TEST(test_retention_and_background), TEST(test_background_pays_seals),
          TEST(test_reserve_restored_in_background),
          TEST(test_slow_topic_changes_do_not_block_others), TEST(test_max_partitions))
