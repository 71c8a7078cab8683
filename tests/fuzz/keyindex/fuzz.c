/* libFuzzer target: the key index files of key.index topics (storage/segkeys.c). The input is
 * written as the index file of the first segment of a small partition (its header made
 * consistent, checksum included, when the input's first byte is odd, so that the entries
 * themselves are searched); then the partition is opened and keys looked up. Whatever the file
 * holds, nothing may crash, loop or read out of bounds, and what the lookups answer must be
 * offsets of the partition, ascending: a bad file is rebuilt or gives wrong offsets, which the
 * readers check against the log (they compare keys), never a crash. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/storage.h"
#include "tidings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KEYS 5

static char dir[PATH_MAX];
static int64_t seg_end; /* the first segment's next offset */

static void cleanup(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

static void setup(void)
{
    td_set_log_level("off"); /* every rebuilt file is logged */
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/tidings-fuzz-keyindex-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        abort();
    atexit(cleanup);
    td_topic_config c;
    td_topic_config_init(&c);
    c.key_index = true;
    c.segment_bytes = 1024;
    c.fsync_policy = TD_FSYNC_NONE;
    td_part *p;
    if (part_open(td_io_posix(), dir, "f/0", &c, &p))
        abort();
    for (int i = 0; i < 60; i++) {
        char key[8], val[8];
        snprintf(key, sizeof(key), "k%d", i % KEYS);
        snprintf(val, sizeof(val), "%d", i);
        td_event ev = {.key = key, .key_len = strlen(key), .value = val,
                       .value_len = strlen(val), .timestamp_ms = 1};
        td_batch_encode_opts o;
        batch_encode_opts_init(&o);
        td_buf b;
        td_buf_init(&b);
        if (batch_encode(&b, &o, &ev, 1) || part_append(p, b.p, b.len, 1, NULL))
            abort();
        td_buf_free(&b);
    }
    td_part_stats st;
    part_stats(p, &st);
    if (st.segments < 2)
        abort();
    part_close(p);
    /* The first segment ends where the second begins: its name. */
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof(cmd), "ls %s | grep '\\.log$' | sed -n 2p", dir);
    FILE *f = popen(cmd, "r");
    long long second = -1;
    if (!f || fscanf(f, "%lld", &second) != 1)
        abort();
    pclose(f);
    seg_end = second;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0])
        setup();
    uint8_t *b = malloc(size + 20);
    if (!b)
        return 0;
    memcpy(b, data, size);
    size_t n = size;
    if (size >= 1 && (data[0] & 1)) { /* a consistent header over the entries that follow it */
        size_t entries = size >= 20 ? (size - 20) / 20 : 0;
        n = 20 + entries * 20;
        if (size < 20)
            memset(b, 0, 20);
        memcpy(b, "TDKX", 4);
        td_store_be32(b + 4, 1);
        td_store_be32(b + 8, (uint32_t)entries);
        td_store_be32(b + 12, (uint32_t)seg_end);
        td_store_be32(b + 16, td_crc32c(0, b + 20, entries * 20));
    }
    char path[PATH_MAX + 40];
    snprintf(path, sizeof(path), "%s/%020d.keyindex", dir, 0);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(b, 1, n, f) != n))
        abort();
    fclose(f);
    free(b);
    td_topic_config c;
    td_topic_config_init(&c);
    c.key_index = true;
    c.segment_bytes = 1024;
    c.fsync_policy = TD_FSYNC_NONE;
    td_part *p;
    if (part_open(td_io_posix(), dir, "f/0", &c, &p))
        abort();
    int64_t end = part_log_end(p);
    for (int k = 0; k <= KEYS; k++) {
        char key[8];
        snprintf(key, sizeof(key), "k%d", k);
        int64_t v, out[64];
        size_t got;
        if (part_key_version(p, key, strlen(key), &v) == 0 && (v < -1 || v >= end))
            abort();
        if (part_key_offsets(p, key, strlen(key), 0, out, 64, &got) == 0)
            for (size_t i = 0; i < got; i++)
                if (out[i] < 0 || out[i] >= end || (i && out[i] <= out[i - 1]))
                    abort();
    }
    part_close(p);
    return 0;
}
