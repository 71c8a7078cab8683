/* libFuzzer target: the schema registry's REST mapping (broker/registry_rest.c), the part of it
 * that parses by hand (percent-decoding, path segments, query parameters, the body's bound
 * before jansson) and every route behind it, on one engine kept for the run. The input is
 * "METHOD\nPATH\nQUERY\nBODY": each answer must be a status from 200 to 599 with a
 * NUL-terminated body of the length given, and registry_pct_decode must never read past its
 * input nor keep a NUL. The engine's state topics do not fsync (state.topic.fsync=none), and the
 * registry is bounded to 200 versions, so that the run stays fast and small. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "broker/registry.h"
#include "tidings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static td_engine *engine;
static char dir_path[64];

/* The engine's directory goes with the process. */
static void remove_dir(void)
{
    char cmd[128];
    td_engine_close(engine);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir_path);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir_path);
}

static void open_engine(void)
{
    snprintf(dir_path, sizeof(dir_path), "/tmp/tidings-fuzz-registry-XXXXXX");
    char *dir = mkdtemp(dir_path);
    if (!dir)
        abort();
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    o.log_cleaner_enable = 0;
    o.schema_registry_max_schemas = 200;
    o.schema_registry_max_schema_bytes = 4096;
    snprintf(o.state_topic_fsync, sizeof(o.state_topic_fsync), "none");
    td_log_set_level(TD_LOG_OFF);
    if (td_engine_open(dir, &o, &engine) != 0)
        abort();
    atexit(remove_dir);
}

/* The next '\n'-terminated field of data (malloc'd, NUL-terminated). */
static char *field(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *s = malloc(n + 1);
    memcpy(s, *p, n);
    s[n] = '\0';
    *p += n + (nl ? 1 : 0);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!engine)
        open_engine();
    /* The decoder alone, on an exact-size copy (ASan sees any read past it). */
    char *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    char *d = registry_pct_decode(copy, size, size & 1);
    if (d && strlen(d) > size)
        abort();
    free(d);
    free(copy);
    const uint8_t *p = data, *end = data + size;
    char *method = field(&p, end), *path = field(&p, end), *query = field(&p, end);
    size_t blen = (size_t)(end - p);
    char *body = malloc(blen ? blen : 1);
    memcpy(body, p, blen);
    char *resp = NULL;
    size_t rlen = 0;
    int status = registry_rest(engine, NULL, method, path, query, blen ? body : NULL, blen,
                               &resp, &rlen);
    if (status < 200 || status > 599 || !resp || strlen(resp) != rlen)
        abort();
    free(resp);
    free(body);
    free(method);
    free(path);
    free(query);
    return 0;
}
