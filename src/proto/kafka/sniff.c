/*
 * sniff.c: what the Kafka listener logs when a frame's size prefix is impossible (negative, or
 * above the largest frame). A Kafka client never sends one, so the peer is most likely speaking
 * another protocol: a TLS client of a listener without TLS, a browser or curl, a Redis client.
 * The four bytes that make an absurd size ("GET " is 1195725856) say which, and the line says
 * so plainly. The connection is closed after it, so each line is once per connection, and
 * base/log.c limits how many such lines a flood of them can write.
 */
#include <ctype.h>
#include <inttypes.h>

#include "base/base.h"
#include "proto/kafka/handler_int.h"

void kafka_log_bad_frame(net_conn *c, const uint8_t *p, size_t n, size_t max)
{
    net_sniff_kind k = net_sniff(p, n);
    if (k == NET_SNIFF_TLS) {
        TD_WARN("kafka",
                "%s sent a TLS ClientHello; this listener is plaintext (TLS is not configured); "
                "closing",
                net_conn_peer(c));
    } else if (k == NET_SNIFF_HTTP) {
        char line[64];
        size_t i = 0;
        for (; i < n && i < sizeof(line) - 1 && p[i] != '\r' && p[i] != '\n'; i++)
            line[i] = isprint(p[i]) ? (char)p[i] : '?';
        line[i] = 0;
        TD_WARN("kafka", "%s sent an HTTP request to the Kafka port (\"%s\"); closing",
                net_conn_peer(c), line);
    } else if (k == NET_SNIFF_RESP) {
        TD_WARN("kafka", "%s sent a Redis (RESP) command to the Kafka port; closing",
                net_conn_peer(c));
    } else {
        TD_WARN("kafka", "%s sent a frame size %" PRId32 " above the limit %zu; closing",
                net_conn_peer(c), (int32_t)td_load_be32(p), max);
    }
}
