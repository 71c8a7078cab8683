/*
 * bench_schema_json.c: the cost of JSON Schema validation on the produce path, against the cost
 * of parsing the same JSON with jansson (which the produce path pays anyway when it validates),
 * in the same run.
 *
 *   bench_schema_json [ITERATIONS]
 *   bench_schema_json ITERATIONS SCHEMA_FILE EVENTS_FILE
 *
 * The document is an order event of about 1 KiB (nested objects, an array of line items,
 * strings with patterns and formats, numbers with bounds, an enum); the schema checks every
 * part of it. Prints, per document, in microseconds:
 *   parse     json_loadb alone (jansson: what the produce path used before json_dom.c);
 *   dom       jd_parse alone (schema/json_dom.c: what the produce path parses with now);
 *   validate  schema_json_validate_value on the jansson value (copied into a document, then
 *             the compiled tree's walk: the Redis XADD path);
 *   both      schema_validate_json (parse + validate: what a listener calls per record).
 * The second form reads the schema from SCHEMA_FILE and the documents from EVENTS_FILE in
 * bench_kafka's producefile format (a 4-byte big-endian length, then an event in Confluent's
 * wire format: its 5-byte header is skipped), as bench/schema.sh writes them, and cycles
 * through them.
 * BENCH_JSON_ONLY_BOTH=1 measures the first three once only (to profile the last).
 * Times are the thread's CPU time, so that a loaded machine (other builds on the same cores)
 * does not count its waits.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema/json_dom.h"
#include "schema/schema.h"

static const char *const SCHEMA =
    "{\"$schema\": \"http://json-schema.org/draft-07/schema#\", \"title\": \"Order\","
    " \"type\": \"object\", \"additionalProperties\": false,"
    " \"required\": [\"id\", \"customer\", \"items\", \"total\", \"status\", \"created\"],"
    " \"properties\": {"
    "  \"id\": {\"type\": \"string\", \"format\": \"uuid\"},"
    "  \"customer\": {\"type\": \"object\", \"required\": [\"name\", \"email\", \"address\"],"
    "   \"properties\": {\"name\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 100},"
    "    \"email\": {\"type\": \"string\", \"format\": \"email\"},"
    "    \"address\": {\"$ref\": \"#/definitions/address\"}}},"
    "  \"items\": {\"type\": \"array\", \"minItems\": 1, \"maxItems\": 100,"
    "   \"items\": {\"$ref\": \"#/definitions/item\"}},"
    "  \"total\": {\"type\": \"number\", \"minimum\": 0, \"multipleOf\": 0.01},"
    "  \"status\": {\"enum\": [\"new\", \"paid\", \"shipped\", \"cancelled\"]},"
    "  \"created\": {\"type\": \"string\", \"format\": \"date-time\"},"
    "  \"notes\": {\"type\": [\"string\", \"null\"], \"maxLength\": 500}},"
    " \"definitions\": {"
    "  \"address\": {\"type\": \"object\", \"required\": [\"street\", \"city\", \"zip\"],"
    "   \"properties\": {\"street\": {\"type\": \"string\"}, \"city\": {\"type\": \"string\"},"
    "    \"zip\": {\"type\": \"string\", \"pattern\": \"^[0-9]{5}$\"},"
    "    \"country\": {\"type\": \"string\", \"minLength\": 2, \"maxLength\": 2}}},"
    "  \"item\": {\"type\": \"object\", \"required\": [\"sku\", \"qty\", \"price\"],"
    "   \"properties\": {\"sku\": {\"type\": \"string\", \"pattern\": \"^[A-Z]{3}-[0-9]{4}$\"},"
    "    \"qty\": {\"type\": \"integer\", \"minimum\": 1},"
    "    \"price\": {\"type\": \"number\", \"exclusiveMinimum\": 0},"
    "    \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, "
    "     \"uniqueItems\": true}}}}}";

static const char *const DOC =
    "{\"id\": \"123e4567-e89b-12d3-a456-426614174000\","
    " \"customer\": {\"name\": \"Ada Lovelace\", \"email\": \"ada@example.org\","
    "  \"address\": {\"street\": \"12 Analytical Engine Road\", \"city\": \"London\","
    "   \"zip\": \"12345\", \"country\": \"GB\"}},"
    " \"items\": ["
    "  {\"sku\": \"ABC-0001\", \"qty\": 2, \"price\": 19.99, \"tags\": [\"red\", \"large\"]},"
    "  {\"sku\": \"DEF-0002\", \"qty\": 1, \"price\": 5.5, \"tags\": [\"blue\"]},"
    "  {\"sku\": \"GHI-0003\", \"qty\": 10, \"price\": 0.99, \"tags\": []},"
    "  {\"sku\": \"JKL-0004\", \"qty\": 3, \"price\": 102.25, \"tags\": [\"gift\", \"fragile\"]},"
    "  {\"sku\": \"MNO-0005\", \"qty\": 1, \"price\": 45.0, \"tags\": [\"sale\"]},"
    "  {\"sku\": \"PQR-0006\", \"qty\": 4, \"price\": 7.75, \"tags\": [\"x\", \"y\", \"z\"]},"
    "  {\"sku\": \"STU-0007\", \"qty\": 2, \"price\": 12.5, \"tags\": [\"new\", \"eco\"]},"
    "  {\"sku\": \"VWX-0008\", \"qty\": 6, \"price\": 3.25, \"tags\": [\"bulk\"]}],"
    " \"total\": 541.9, \"status\": \"paid\", \"created\": \"2024-05-01T12:34:56.789Z\","
    " \"notes\": \"Leave the parcel with the neighbour if nobody answers the door; the second"
    " bell from the left. Thank you very much for the quick delivery last time.\"}";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define MAX_DOCS 1024

typedef struct docs {
    const char *text[MAX_DOCS];
    size_t len[MAX_DOCS];
    size_t n, bytes;
} docs;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, k;
    do {
        if (n == cap) {
            char *t = realloc(buf, cap = cap ? 2 * cap : 65536);
            if (!t) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = t;
        }
        k = fread(buf + n, 1, cap - n, f);
        n += k;
    } while (k > 0);
    fclose(f);
    *len = n;
    return buf;
}

/* The events of a producefile, their wire headers skipped. */
static int split_events(docs *d, const char *buf, size_t len)
{
    size_t off = 0;
    while (off + 4 <= len && d->n < MAX_DOCS) {
        const unsigned char *p = (const unsigned char *)buf + off;
        size_t n = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        if (n < 5 || off + 4 + n > len)
            return -1;
        d->text[d->n] = buf + off + 4 + 5;
        d->len[d->n] = n - 5;
        d->bytes += n - 5;
        d->n++;
        off += 4 + n;
    }
    return d->n ? 0 : -1;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    const char *schema_text = SCHEMA;
    size_t schema_len = strlen(SCHEMA);
    char *schema_buf = NULL, *events_buf = NULL;
    docs d = {.text = {DOC}, .len = {strlen(DOC)}, .n = 1, .bytes = strlen(DOC)};
    if (argc > 3) {
        size_t elen = 0;
        schema_buf = slurp(argv[2], &schema_len);
        events_buf = slurp(argv[3], &elen);
        d = (docs){0};
        if (!schema_buf || !events_buf || split_events(&d, events_buf, elen)) {
            fprintf(stderr, "cannot read %s or %s\n", argv[2], argv[3]);
            return 1;
        }
        schema_text = schema_buf;
    }
    schema *s = NULL;
    schema_error err;
    if (schema_parse(SCHEMA_JSON, schema_text, schema_len, NULL, 0, &s, &err)) {
        fprintf(stderr, "schema: %s %s\n", err.path, err.message);
        return 1;
    }
    for (size_t k = 0; k < d.n; k++)
        if (schema_validate_json(s, d.text[k], d.len[k], &err)) {
            fprintf(stderr, "document %zu: %s %s: %s\n", k, err.path, err.rule, err.message);
            return 1;
        }
    /* BENCH_JSON_ONLY_BOTH=1: the last figure alone (to profile the produce path's work). */
    long other = getenv("BENCH_JSON_ONLY_BOTH") ? 1 : iters;
    double t0 = now_s();
    for (long i = 0; i < other; i++)
        json_decref(json_loadb(d.text[i % d.n], d.len[i % d.n], 0, NULL));
    double parse = (now_s() - t0) / (double)other;
    jd_doc doc = {0};
    t0 = now_s();
    for (long i = 0; i < other; i++)
        if (jd_parse(&doc, d.text[i % d.n], d.len[i % d.n]))
            return 1;
    double dom = (now_s() - t0) / (double)other;
    jd_doc_free(&doc);
    json_t *vals[MAX_DOCS];
    for (size_t k = 0; k < d.n; k++)
        vals[k] = json_loadb(d.text[k], d.len[k], 0, NULL);
    t0 = now_s();
    for (long i = 0; i < other; i++)
        if (schema_json_validate_value(s, vals[i % d.n], &err))
            return 1;
    double validate = (now_s() - t0) / (double)other;
    for (size_t k = 0; k < d.n; k++)
        json_decref(vals[k]);
    t0 = now_s();
    for (long i = 0; i < iters; i++)
        if (schema_validate_json(s, d.text[i % d.n], d.len[i % d.n], &err))
            return 1;
    double both = (now_s() - t0) / (double)iters;
    printf("%zu documents of %zu bytes on average, %ld iterations\n", d.n, d.bytes / d.n, iters);
    printf("parse     %.2f us\ndom       %.2f us\nvalidate  %.2f us\nboth      %.2f us\n",
           parse * 1e6, dom * 1e6, validate * 1e6, both * 1e6);
    schema_free(s);
    free(schema_buf);
    free(events_buf);
    return 0;
}
