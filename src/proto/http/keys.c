/*
 * keys.c: table reads over HTTP (docs/http-api.md#read-a-key):
 *   GET /v1/topics/{topic}/keys/{key}[?partition=N][&values=json|string]
 * The latest event of a key in a compacted topic, from the partition's key index (td_get_key),
 * in the JSON shape of the consume routes. 404 for an unknown key or a tombstone, 400 for a
 * topic that is not compacted, 503 when the index was dropped for lack of memory
 * (table.index.max.bytes). Authorization: Read on the topic (authz.c), as consuming.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "proto/http/http_int.h"

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
