/* crash_common.h: helpers shared by the crash tests: events numbered by sequence (event n has
 * value "s<n>", so the value says which offset it must have), a full read-back check, and the
 * round of the kill tests (fork a writer, kill -9 it, collect what it acknowledged). */
#ifndef TD_CRASH_COMMON_H
#define TD_CRASH_COMMON_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storage/storage.h"
#include "support/partcheck.h"
#include "test.h"

/* The events come from one idempotent producer whose sequence numbers equal the offsets, so
 * that recovery must also rebuild its state: after a crash, the next batch (sequence = log end)
 * must be accepted in order, and a retry of the last one recognised. */
#define CRASH_PRODUCER 7

/* Appends `count` events numbered from `first` as one batch; returns part_append's rc. */
static inline int crash_append(td_part *p, int64_t first, int count, td_append_result *r)
{
    td_event ev[16];
    char vals[16][32];
    for (int i = 0; i < count; i++) {
        snprintf(vals[i], sizeof(vals[i]), "s%lld", (long long)(first + i));
        ev[i] = (td_event){.value = vals[i], .value_len = strlen(vals[i]),
                           .timestamp_ms = 1700000000000LL + first + i};
    }
    td_batch_encode_opts o;
    batch_encode_opts_init(&o);
    o.producer_id = CRASH_PRODUCER;
    o.producer_epoch = 0;
    o.base_sequence = (int32_t)first;
    td_buf b;
    td_buf_init(&b);
    int rc = batch_encode(&b, &o, ev, (size_t)count);
    if (rc == 0)
        rc = part_append(p, b.p, b.len, 1700000000000LL, r);
    td_buf_free(&b);
    return rc;
}

/* Checks the whole partition is a valid prefix: offsets dense from 0, every batch valid,
 * event n holds "s<n>". Returns the number of events. */
static inline int64_t crash_check_log(td_part *p)
{
    ASSERT_EQ(part_log_start(p), 0);
    return check_part_values(p, 0, "s");
}

/* After recovery: the producer's state names the log's last event (have - 1) when the log is
 * not empty. */
static inline void crash_check_producer(td_part *p, int64_t have)
{
    int16_t epoch;
    int32_t last_seq;
    int64_t last_offset;
    int rc = part_producer(p, CRASH_PRODUCER, &epoch, &last_seq, &last_offset);
    if (have == 0) {
        ASSERT_EQ(rc, TD_ENOTFOUND);
        return;
    }
    ASSERT_OK(rc);
    ASSERT_EQ(epoch, 0);
    ASSERT_EQ(last_seq, have - 1);
    ASSERT_EQ(last_offset, have - 1);
}

/* The writer of a kill test, run in a forked child: appends to the partition in dir and writes
 * each figure it acknowledges (an int64_t, once the append is durable) to wfd; never returns
 * (it _exits). */
typedef void (*crash_child_fn)(const char *dir, int round, int wfd);

/* One round of a kill test: forks a child running child(dir, round, wfd), kills it with SIGKILL
 * after min_us plus a random part of span_us microseconds, waits for it (its wait status in
 * *status) and returns the last figure it acknowledged through the pipe, or `none` when it sent
 * none. The caller checks the status and reopens the partition. */
static inline int64_t crash_kill_round(crash_child_fn child, const char *dir, int round, int min_us,
                                       int span_us, int64_t none, int *status)
{
    int fds[2];
    ASSERT_OK(pipe(fds));
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child(dir, round, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    usleep((useconds_t)(min_us + rand() % span_us));
    kill(pid, SIGKILL);
    ASSERT_EQ(waitpid(pid, status, 0), pid);
    int64_t v, acked = none;
    while (read(fds[0], &v, sizeof(v)) == sizeof(v))
        acked = v; /* the last acknowledgement that reached the pipe */
    close(fds[0]);
    return acked;
}

/* The status of a child that was still writing when it was killed. */
static inline bool crash_killed(int status)
{
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

/* Damages one index file of dir with extension ext ("keyindex", "traceindex"), chosen by
 * round: cut mid-entry, or removed (the kill tests' rounds then check that it is rebuilt). */
static inline void crash_damage_index(const char *dir, const char *ext, int round)
{
    char cmd[1200], path[1024];
    snprintf(cmd, sizeof(cmd), "ls %s/*.%s 2>/dev/null | sed -n %dp", dir, ext, 1 + round % 3);
    FILE *f = popen(cmd, "r");
    bool got = fgets(path, sizeof(path), f) != NULL;
    pclose(f);
    if (!got)
        return;
    path[strcspn(path, "\n")] = 0;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return;
    if (round % 2)
        ASSERT_OK(truncate(path, sb.st_size > 30 ? sb.st_size - 13 : 0));
    else
        ASSERT_OK(unlink(path));
}

#endif
