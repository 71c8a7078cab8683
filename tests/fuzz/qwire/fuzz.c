/* libFuzzer target: the queue wire forms (proto/http/queue_wire.c), which read what HTTP clients
 * send and write what they receive.
 *   - An outcome body that qwire_outcome_parse accepts must be JSON that jansson reads to the
 *     same thing: an object with "ids" an array of the same strings, each a delivery id or
 *     range, as many ids as counted, and the same delay, error and results choice.
 *   - A delivery id that qwire_item_parse accepts without a range must be one for
 *     queue_id_parse too, with the same numbers, and format back to itself.
 *   - The input's bytes as an event's key, value and header, written as a receive answers them,
 *     must parse and equal http_event_json's tree in the json and string modes.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "broker/queue.h"
#include "proto/http/http_int.h"
#include "proto/http/queue_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_outcome(const char *s, size_t n, int kind)
{
    qwire_outcome o;
    if (qwire_outcome_parse(s, n, kind, &o) != 0)
        return;
    json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(j))
        abort();
    json_t *ids = json_object_get(j, "ids");
    if (!json_is_array(ids) || json_array_size(ids) != o.n_items || o.n_items == 0 ||
        o.n_ids > QWIRE_MAX_IDS)
        abort();
    size_t pos = 0, nids = 0;
    td_slice t;
    qwire_item it;
    for (size_t i = 0; i < o.n_items; i++) {
        json_t *v = json_array_get(ids, i);
        if (!qwire_ids_next(&o, &pos, &t, &it) || !json_is_string(v) ||
            json_string_length(v) != t.n || memcmp(json_string_value(v), t.p, t.n))
            abort();
        nids += (size_t)(it.last - it.first) + 1;
    }
    if (qwire_ids_next(&o, &pos, &t, &it) || nids != o.n_ids)
        abort();
    json_t *ms = json_object_get(j, kind == QWIRE_NACK ? "delay_ms" : "ms");
    if (o.has_ms != (ms != NULL) || (ms && json_integer_value(ms) != o.ms))
        abort();
    json_t *err = json_object_get(j, "error");
    if (o.has_error != (err != NULL) ||
        (err && (json_string_length(err) != o.error.n ||
                 memcmp(json_string_value(err), o.error.p, o.error.n))))
        abort();
    json_t *res = json_object_get(j, "results");
    if (o.failed_only != (res && !strcmp(json_string_value(res), "failed")))
        abort();
    json_decref(j);
}

static void check_item(const char *s, size_t n)
{
    qwire_item it;
    if (!qwire_item_parse(s, n, &it))
        return;
    if (it.last < it.first || it.last - it.first >= QWIRE_MAX_IDS)
        abort();
    char id[TD_QUEUE_ID_MAX], *z = malloc(n + 1);
    if (!z)
        return;
    memcpy(z, s, n);
    z[n] = 0;
    int64_t t, o;
    int32_t p, d;
    bool range = memchr(s, '-', n) != NULL;
    if (!range && (!queue_id_parse(z, &t, &p, &o, &d) || t != it.topic_id || p != it.partition ||
                   o != it.first || d != it.deliveries))
        abort();
    qwire_item again;
    size_t k = qwire_item_id(&it, it.last, id);
    if (!qwire_item_parse(id, k, &again) || again.first != it.last ||
        again.topic_id != it.topic_id || again.partition != it.partition ||
        again.deliveries != it.deliveries)
        abort();
    free(z);
}

static void check_event(const uint8_t *data, size_t size)
{
    /* Split the input into key, value and one header's value. */
    size_t a = size / 3, b = 2 * size / 3;
    td_header h = {"h", 1, data + b, size - b};
    td_queue_msg m;
    memset(&m, 0, sizeof(m));
    strcpy(m.id, "1.2.3.4");
    strcpy(m.topic, "t");
    m.event = (td_event){.key = data,
                         .key_len = a,
                         .value = data + a,
                         .value_len = b - a,
                         .headers = &h,
                         .header_count = 1,
                         .partition = 2,
                         .offset = 3};
    m.deliveries = 4;
    for (int mode = 0; mode < 3; mode++) {
        td_buf out;
        td_buf_init(&out);
        if (qwire_write_events(&out, &m, 1, mode) != 0)
            abort();
        json_t *got = json_loadb((const char *)out.p, out.len, JSON_ALLOW_NUL, NULL);
        if (!got)
            abort();
        if (mode != QWIRE_VALUES_BASE64) {
            json_t *ev = http_event_json(NULL, m.topic, &m.event, mode == QWIRE_VALUES_JSON);
            json_t *o = json_pack("{s:s}", "id", m.id);
            json_object_update(o, ev);
            json_decref(ev);
            json_object_set_new(o, "deliveries", json_integer(4));
            json_t *want = json_pack("{s:[o]}", "events", o);
            if (!json_equal(want, got))
                abort();
            json_decref(want);
        }
        json_decref(got);
        td_buf_free(&out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    for (int kind = QWIRE_ACK; kind <= QWIRE_EXTEND; kind++)
        check_outcome(s, size, kind);
    check_item(s, size);
    if (size <= 4096)
        check_event(data, size);
    return 0;
}
