/*
 * An application that embeds tidings: it opens an engine on a data directory, creates a topic,
 * produces keyed events with headers, and reads them back by offset and by time.
 *
 *   embedded_example [DATA_DIR]      (default ./example-data)
 *
 * It exits 0 only if what it read is what it wrote, so the test suite runs it.
 */
#include <stdio.h>
#include <string.h>

#include "tidings.h"

#define N 10

static int fail(const char *what, int rc)
{
    fprintf(stderr, "embedded_example: %s: %s (%s)\n", what, td_strerror(rc), td_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "./example-data";
    td_engine *e;
    int rc = td_engine_open(dir, NULL, &e);
    if (rc)
        return fail("open", rc);

    /* A topic with 3 partitions that keeps events for a day. Creating it again on a second
     * run is fine: TD_EEXIST. */
    td_config_entry cfg[] = {{"retention.ms", "86400000"}};
    rc = td_topic_create(e, "orders", 3, cfg, 1);
    if (rc && rc != TD_EEXIST)
        return fail("create topic", rc);

    /* Ten events for one customer: the same key, so the same partition, in order. */
    char values[N][32];
    td_event ev[N];
    td_header hdr = {"content-type", 12, "text/plain", 10};
    for (int i = 0; i < N; i++) {
        snprintf(values[i], sizeof(values[i]), "order %d", i);
        ev[i] = (td_event){.key = "customer-42", .key_len = 11, .value = values[i],
                           .value_len = strlen(values[i]), .headers = &hdr, .header_count = 1,
                           .partition = TD_PARTITION_ANY};
    }
    td_produce_result res[N];
    rc = td_produce(e, "orders", ev, N, res); /* returns once the events are on disk */
    if (rc)
        return fail("produce", rc);
    int32_t part = res[0].partition;
    if (part != td_partition_for_key("customer-42", 11, 3)) {
        fprintf(stderr, "embedded_example: partition %d is not the key's\n", part);
        return 1;
    }
    printf("produced %d events to orders/%d at offsets %lld..%lld\n", N, part,
           (long long)res[0].offset, (long long)res[N - 1].offset);

    /* Read them back from the first offset of this run. */
    td_iter *it;
    rc = td_iter_open(e, "orders", part, res[0].offset, &it);
    if (rc)
        return fail("open iterator", rc);
    td_event got;
    int n = 0;
    while ((rc = td_iter_next(it, &got)) == 1) {
        /* got.key, got.value and got.headers stay valid until the next td_iter_next. */
        printf("  offset %lld key %.*s value %.*s header %.*s=%.*s\n", (long long)got.offset,
               (int)got.key_len, (const char *)got.key, (int)got.value_len,
               (const char *)got.value, (int)got.headers[0].key_len, got.headers[0].key,
               (int)got.headers[0].value_len, (const char *)got.headers[0].value);
        if (got.value_len != strlen(values[n]) || memcmp(got.value, values[n], got.value_len) ||
            got.offset != res[n].offset || got.header_count != 1) {
            fprintf(stderr, "embedded_example: event %d differs\n", n);
            return 1;
        }
        n++;
    }
    td_iter_close(it);
    if (rc < 0)
        return fail("read", rc);
    if (n != N) {
        fprintf(stderr, "embedded_example: read %d events, wrote %d\n", n, N);
        return 1;
    }

    /* Find an offset by time: the first event at or after the first one's timestamp. */
    int64_t off;
    rc = td_iter_open(e, "orders", part, res[0].offset, &it);
    if (rc == 0 && (rc = td_iter_next(it, &got)) == 1)
        rc = td_offset_for_time(e, "orders", part, got.timestamp_ms, &off);
    td_iter_close(it);
    if (rc < 0)
        return fail("offset by time", rc);
    if (off > res[0].offset) {
        fprintf(stderr, "embedded_example: by time gave %lld\n", (long long)off);
        return 1;
    }
    if ((rc = td_engine_close(e)) != 0) /* the final sync failed: the last events may be lost */
        return fail("close", rc);
    printf("read back %d events: ok\n", n);
    return 0;
}
