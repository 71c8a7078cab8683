/*
 * bench_schema_avro.c: the cost of validating one Avro datum (schema_validate), the work the
 * produce path does per record under `schema.validation.mode=full`.
 *
 *   bench_schema_avro     one line per case: "avro-validate <bytes> <ns/datum> <MB/s>"
 *
 * The datum is a record of strings, longs, doubles, an enum, a union and an array of strings,
 * about 1 KiB (and a 64 KiB variant, for the per-byte cost). BENCH_SECONDS sets the time per
 * case (default 1), measured in the thread's CPU time, so that other work on the machine does
 * not count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema/schema.h"

static const char *const SCHEMA_TEXT =
    "{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"bench\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"long\"},{\"name\":\"customer\",\"type\":\"string\"},"
    "{\"name\":\"email\",\"type\":[\"null\",\"string\"]},{\"name\":\"amount\",\"type\":\"double\"},"
    "{\"name\":\"currency\",\"type\":{\"type\":\"enum\",\"name\":\"Cur\",\"symbols\":"
    "[\"EUR\",\"USD\",\"GBP\"]}},{\"name\":\"ts\",\"type\":{\"type\":\"long\","
    "\"logicalType\":\"timestamp-millis\"}},{\"name\":\"note\",\"type\":\"string\"},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
    "{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"values\":\"long\"}}]}";

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void run(const schema *s, size_t note_len, double seconds)
{
    char *note = malloc(note_len + 1);
    for (size_t i = 0; i < note_len; i++)
        note[i] = (char)('a' + i % 26);
    note[note_len] = 0;
    size_t cap = note_len + 2048;
    char *json = malloc(cap);
    int k = snprintf(json, cap,
                     "{\"id\":123456789,\"customer\":\"Jérôme Durand\",\"email\":{\"string\":"
                     "\"j@example.org\"},\"amount\":42.5,\"currency\":\"EUR\",\"ts\":"
                     "1700000000000,\"note\":\"%s\",\"tags\":[\"a\",\"bb\",\"ccc\",\"priority\"],"
                     "\"attrs\":{\"x\":1,\"y\":2,\"zeta\":300000}}",
                     note);
    uint8_t *bin = NULL;
    size_t n = 0;
    schema_error err;
    if (schema_avro_from_json(s, json, (size_t)k, &bin, &n, &err)) {
        fprintf(stderr, "encode: %s\n", err.message);
        exit(1);
    }
    long iters = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 1000; i++)
            if (schema_validate(s, bin, n, &err)) {
                fprintf(stderr, "validate: %s\n", err.message);
                exit(1);
            }
        iters += 1000;
    } while ((t = now() - t0) < seconds);
    printf("avro-validate %zu %.0f %.0f\n", n, t / (double)iters * 1e9,
           (double)n * (double)iters / t / 1e6);
    free(bin);
    free(json);
    free(note);
}

int main(void)
{
    const char *sec = getenv("BENCH_SECONDS");
    double seconds = sec ? atof(sec) : 1.0;
    schema *s;
    schema_error err;
    if (schema_parse(SCHEMA_AVRO, SCHEMA_TEXT, strlen(SCHEMA_TEXT), NULL, 0, &s, &err)) {
        fprintf(stderr, "parse: %s\n", err.message);
        return 1;
    }
    run(s, 850, seconds);
    run(s, 64 * 1024, seconds);
    schema_free(s);
    return 0;
}
