/*
 * keys.c: reads by key over HTTP (docs/http-api.md#read-a-key, docs/event-sourcing.md):
 *   GET /v1/topics/{topic}/keys/{key}[?partition=N][&values=json|string]
 *       The latest event of a key in a compacted topic, from the partition's key index
 *       (td_get_key), in the JSON shape of the consume routes. 404 for an unknown key or a
 *       tombstone, 400 for a topic that is not compacted, 503 when the index was dropped for
 *       lack of memory (table.index.max.bytes).
 *   GET /v1/topics/{topic}/keys/{key}/events[?partition=N][&from_version=V][&limit=L][&values=]
 *       [&isolation=read_committed|read_uncommitted]
 *       The key's stream on a key.index topic (td_iter_open_key): its committed events (unless
 *       isolation says otherwise) from version V
 *       (an offset, inclusive; default 0), at most L, with the stream's version and the
 *       from_version of the next page. 400 no_key_index without key.index. With Accept:
 *       text/event-stream, the same events as Server-Sent Events, followed by the key's new
 *       ones as they are appended (http_subscribe_key, subscribe.c).
 *   GET /v1/topics/{topic}/tags/{tag}/events[?partition=N (default 0)][&from_version=V]...
 *       The same for the events carrying an event tag (docs/event-sourcing.md#tags), without
 *       the Server-Sent Events form.
 * Authorization: Read on the topic (authz.c), as consuming.
 * And the produce's conditions (events.c calls these): "expected_version" per event, "any",
 * "no_stream", "exists" or an offset; a body's "condition" over a set of keys and event tags
 * ({"keys": [...], "tags": [...], "after": P, "partition": N}); a mismatch answers 409
 * wrong_expected_version.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "proto/http/http_int.h"

#define DEFAULT_LIMIT 100
#define MAX_LIMIT 10000

/* A stream's version as JSON: the offset, or "no_stream". */
static json_t *version_json(int64_t v)
{
    return v >= 0 ? json_integer(v) : json_string("no_stream");
}

static void respond_key_error(hconn *hc, int rc)
{
    if (rc == TD_EUNSUPPORTED)
        return http_respond_error(hc, 400, "no_key_index", td_last_error());
    http_respond_td_error(hc, rc);
}

void http_route_key_events(hconn *hc, const char *topic, const char *key, size_t key_len)
{
    http_route_index_events(hc, topic, false, key, key_len);
}

void http_route_index_events(hconn *hc, const char *topic, bool tag, const char *key,
                             size_t key_len)
{
    if (!http_method_is(hc, "GET") && !http_method_is(hc, "HEAD"))
        return http_respond_method_not_allowed(hc, "GET, HEAD");
    const td_slice *accept = http_header_get(&hc->req, "accept");
    if (!tag && http_method_is(hc, "GET") && accept &&
        memmem(accept->p, accept->n, "text/event-stream", 17)) /* follow it (subscribe.c) */
        return http_subscribe_key(hc, topic, key, key_len);
    int64_t partition = TD_PARTITION_ANY, from = 0, limit = DEFAULT_LIMIT;
    bool values_json;
    int iso;
    if (http_query_int(hc, "partition", 0, INT32_MAX, &partition) < 0 ||
        http_query_int(hc, "from_version", 0, INT64_MAX, &from) < 0 ||
        http_query_int(hc, "limit", 1, MAX_LIMIT, &limit) < 0 ||
        !http_values_param(hc, &values_json) || !http_isolation_param(hc, &iso))
        return;
    td_engine *e = hc->s->e;
    if (tag && (key_len == 0 || key_len > TD_TAG_MAX_LEN)) {
        char msg[100];
        snprintf(msg, sizeof(msg), "a tag has 1 to %d bytes", TD_TAG_MAX_LEN);
        return http_respond_error(hc, 400, "invalid_argument", msg);
    }
    if (tag && partition == TD_PARTITION_ANY)
        partition = 0; /* tags have no partition of their own: ?partition=N, else 0 */
    if (partition == TD_PARTITION_ANY) {
        td_topic_info info;
        int rc = td_topic_describe(e, topic, &info);
        if (rc)
            return http_respond_td_error(hc, rc);
        partition = td_partition_for_key(key, key_len, info.partitions);
    }
    int64_t version;
    td_iter *it = NULL;
    int rc = tag ? td_tag_version(e, topic, key, key_len, (int32_t)partition, &version)
                 : td_key_version(e, topic, key, key_len, (int32_t)partition, &version);
    if (rc == 0 && tag)
        rc = td_iter_open_tag(e, topic, key, key_len, (int32_t)partition, from, &it);
    else if (rc == 0)
        rc = td_iter_open_key(e, topic, key, key_len, (int32_t)partition, from, &it);
    if (rc == 0)
        rc = td_iter_set_isolation(it, iso);
    if (rc) {
        td_iter_close(it);
        return respond_key_error(hc, rc);
    }
    json_t *events = json_array();
    td_event ev;
    for (int64_t n = 0; n < limit && (rc = td_iter_next(it, &ev)) == 1; n++) {
        json_array_append_new(events, http_event_json(e, NULL, &ev, values_json));
        version = TD_MAX(version, ev.offset); /* appended since the version was read */
    }
    int64_t next = td_iter_position(it);
    td_iter_close(it);
    if (rc < 0) {
        json_decref(events);
        return http_respond_td_error(hc, rc);
    }
    http_respond_json(hc, 200,
                      json_pack("{s:i,s:o,s:o,s:I}", "partition", (int)partition, "version",
                                version_json(version), "events", events, "next_version",
                                (json_int_t)next),
                      NULL);
}

bool http_expected_version(hconn *hc, td_arena *a, json_t *ev, size_t idx, size_t n,
                           int64_t **expected)
{
    json_t *x = json_object_get(ev, "expected_version");
    if (!x)
        return true;
    int64_t v = -100;
    if (json_is_integer(x) && json_integer_value(x) >= 0)
        v = json_integer_value(x);
    else if (json_is_string(x) && !strcmp(json_string_value(x), "any"))
        v = TD_VERSION_ANY;
    else if (json_is_string(x) && !strcmp(json_string_value(x), "no_stream"))
        v = TD_VERSION_NO_STREAM;
    else if (json_is_string(x) && !strcmp(json_string_value(x), "exists"))
        v = TD_VERSION_EXISTS;
    if (v == -100) {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "event %zu: expected_version must be \"any\", \"no_stream\", \"exists\" or "
                 "an offset (an integer >= 0)",
                 idx);
        http_respond_error(hc, 400, "invalid_argument", msg);
        return false;
    }
    if (!*expected) {
        if (!(*expected = td_arena_alloc(a, n * sizeof(**expected)))) {
            http_respond_error(hc, 500, "internal", "out of memory");
            return false;
        }
        for (size_t i = 0; i < n; i++)
            (*expected)[i] = TD_VERSION_ANY;
    }
    (*expected)[idx] = v;
    return true;
}

bool http_condition(hconn *hc, td_arena *a, json_t *c, td_condition **out)
{
    static const char *const allowed[] = {"keys", "tags", "after", "partition", NULL};
    char msg[200];
    const char *name;
    json_t *v;
    if (!json_is_object(c)) {
        http_respond_error(hc, 400, "invalid_argument",
                           "condition must be an object: {\"keys\": [...], \"after\": P}");
        return false;
    }
    json_object_foreach(c, name, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(name, allowed[i]) == 0;
        if (!ok) {
            snprintf(msg, sizeof(msg), "condition: unknown field '%.100s'", name);
            http_respond_error(hc, 400, "invalid_argument", msg);
            return false;
        }
    }
    json_t *keys = json_object_get(c, "keys"), *tags = json_object_get(c, "tags"),
           *after = json_object_get(c, "after"), *part = json_object_get(c, "partition");
    size_t nk = json_is_array(keys) ? json_array_size(keys) : 0;
    size_t nt = json_is_array(tags) ? json_array_size(tags) : 0;
    if ((keys && !json_is_array(keys)) || (tags && !json_is_array(tags)) || nk + nt == 0 ||
        nk + nt > TD_CONDITION_KEYS_MAX) {
        snprintf(msg, sizeof(msg),
                 "condition: keys and tags must be arrays of strings, 1 to %d of them together",
                 TD_CONDITION_KEYS_MAX);
        http_respond_error(hc, 400, "invalid_argument", msg);
        return false;
    }
    td_condition *cd = td_arena_calloc(a, 1, sizeof(*cd));
    td_condition_key *ks = td_arena_calloc(a, nk + nt, sizeof(*ks));
    if (!cd || !ks) {
        http_respond_error(hc, 500, "internal", "out of memory");
        return false;
    }
    for (size_t i = 0; i < nk + nt; i++) { /* the keys, then the tags */
        json_t *k = i < nk ? json_array_get(keys, i) : json_array_get(tags, i - nk);
        if (!json_is_string(k) ||
            (i >= nk && (json_string_length(k) == 0 || json_string_length(k) > TD_TAG_MAX_LEN))) {
            if (i < nk)
                snprintf(msg, sizeof(msg), "condition: key %zu must be a string", i);
            else
                snprintf(msg, sizeof(msg), "condition: tag %zu must be a string of 1 to %d bytes",
                         i - nk, TD_TAG_MAX_LEN);
            http_respond_error(hc, 400, "invalid_argument", msg);
            return false;
        }
        ks[i].key_len = json_string_length(k);
        if (!(ks[i].key = td_arena_memdup(a, json_string_value(k), ks[i].key_len + 1))) {
            http_respond_error(hc, 500, "internal", "out of memory");
            return false;
        }
    }
    if (json_is_integer(after) && json_integer_value(after) >= 0)
        cd->after = json_integer_value(after);
    else if (json_is_string(after) && !strcmp(json_string_value(after), "no_stream"))
        cd->after = TD_VERSION_NO_STREAM;
    else {
        http_respond_error(hc, 400, "invalid_argument",
                           "condition: after must be an offset (an integer >= 0), or "
                           "\"no_stream\" (none of the keys has an event)");
        return false;
    }
    cd->partition = TD_PARTITION_ANY;
    if (part && (!json_is_integer(part) || json_integer_value(part) < 0 ||
                 json_integer_value(part) > INT32_MAX)) {
        http_respond_error(hc, 400, "invalid_argument",
                           "condition: partition must be an integer >= 0");
        return false;
    }
    if (part)
        cd->partition = (int32_t)json_integer_value(part);
    cd->keys = nk ? ks : NULL;
    cd->key_count = nk;
    cd->tags = nt ? ks + nk : NULL;
    cd->tag_count = nt;
    *out = cd;
    return true;
}

/* Sets err's "key" (or "key_b64" when not UTF-8); true when it is text. */
static bool set_key(json_t *err, const void *key, size_t key_len)
{
    json_t *k = json_stringn(key, key_len); /* NULL unless valid UTF-8 */
    if (!k) {
        td_buf b;
        td_buf_init(&b);
        if (td_base64_encode(&b, key, key_len) == 0)
            json_object_set_new(err, "key_b64", json_stringn((const char *)b.p, b.len));
        td_buf_free(&b);
        return false;
    }
    json_object_set_new(err, "key", k);
    return true;
}

void http_respond_wrong_version(hconn *hc, const td_event *events, const int64_t *expected,
                                const td_condition *cond, const td_produce_result *results,
                                size_t n, const td_version_conflict *c)
{
    char msg[600], xb[24], cb[24], why[100];
    json_t *err;
    if (c->index >= n) { /* the condition's key (then tag) c->index - n changed */
        size_t j = c->index - n;
        bool tag = j >= cond->key_count;
        if (tag)
            j -= cond->key_count;
        const td_condition_key *ck = tag ? &cond->tags[j] : &cond->keys[j];
        snprintf(why, sizeof(why), "the %s version %s is after the position %s",
                 tag ? "tag's" : "stream's", td_version_text(c->current, cb, sizeof(cb)),
                 td_version_text(cond->after, xb, sizeof(xb)));
        err = json_pack("{s:s,s:i,s:I,s:i,s:o,s:o}", "code", "wrong_expected_version", "status",
                        409, tag ? "condition_tag" : "condition_key", (json_int_t)j, "partition",
                        (int)c->partition, "after", version_json(cond->after), "current_version",
                        version_json(c->current));
        if (tag) /* tags are text (checked when parsed) */
            json_object_set_new(err, "tag", json_stringn(ck->key, ck->key_len));
        if ((tag || set_key(err, ck->key, ck->key_len)) && ck->key_len <= 200)
            snprintf(msg, sizeof(msg), "condition %s %zu '%.*s': %s", tag ? "tag" : "key", j,
                     (int)ck->key_len, (const char *)ck->key, why);
        else
            snprintf(msg, sizeof(msg), "condition %s %zu: %s", tag ? "tag" : "key", j, why);
        json_object_set_new(err, "message", json_string(msg));
        http_respond_json(hc, 409, json_pack("{s:o}", "error", err), NULL);
        return; /* one partition: nothing was written */
    }
    const td_event *ev = &events[c->index];
    snprintf(why, sizeof(why), "expected version %s, but the stream's version is %s",
             td_version_text(expected[c->index], xb, sizeof(xb)),
             td_version_text(c->current, cb, sizeof(cb)));
    err =
        json_pack("{s:s,s:i,s:I,s:i,s:o,s:o}", "code", "wrong_expected_version", "status", 409,
                  "index", (json_int_t)c->index, "partition", (int)c->partition, "expected_version",
                  expected[c->index] == TD_VERSION_EXISTS ? json_string("exists")
                                                          : version_json(expected[c->index]),
                  "current_version", version_json(c->current));
    if (set_key(err, ev->key, ev->key_len) && ev->key_len <= 200)
        snprintf(msg, sizeof(msg), "event %zu: key '%.*s': %s", c->index, (int)ev->key_len,
                 (const char *)ev->key, why);
    else
        snprintf(msg, sizeof(msg), "event %zu: %s", c->index, why);
    json_object_set_new(err, "message", json_string(msg));
    json_t *body = json_pack("{s:o}", "error", err);
    /* Events of partitions appended before the failed one are written (only each partition is
     * all or nothing): say which. */
    bool any = false;
    for (size_t i = 0; i < n; i++)
        any = any || results[i].offset >= 0;
    if (any) {
        json_t *offs = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(offs, json_pack("{s:i,s:I}", "partition", results[i].partition,
                                                  "offset", (json_int_t)results[i].offset));
        json_object_set_new(body, "offsets", offs);
    }
    http_respond_json(hc, 409, body, NULL);
}

void http_route_key(hconn *hc, const char *topic, const char *key, size_t key_len)
{
    if (!http_method_is(hc, "GET") && !http_method_is(hc, "HEAD"))
        return http_respond_method_not_allowed(hc, "GET, HEAD");
    int64_t partition = -1;
    char buf[32];
    int hp = http_query_get(hc->req.query, "partition", buf, sizeof(buf));
    if (hp != 0) {
        char *end = NULL;
        long long v = hp > 0 ? strtoll(buf, &end, 10) : -1;
        if (hp < 0 || !buf[0] || *end || v < 0 || v > INT32_MAX)
            return http_respond_error(hc, 400, "invalid_argument",
                                      "query parameter 'partition' must be an integer from 0 to "
                                      "2147483647");
        partition = v;
    }
    bool values_json;
    if (!http_values_param(hc, &values_json))
        return;
    td_event *ev = NULL;
    int rc = td_get_key(hc->s->e, topic, key, key_len, (int32_t)partition, &ev);
    if (rc == TD_EFULL)
        return http_respond_error(hc, 503, "index_full", td_last_error());
    if (rc == TD_ENOTFOUND && !*td_last_error())
        return http_respond_error(hc, 404, "not_found", "no event with that key");
    if (rc)
        return http_respond_td_error(hc, rc);
    json_t *o = http_event_json(hc->s->e, topic, ev, values_json);
    td_event_free(ev);
    http_respond_json(hc, 200, o, NULL);
}
