/*
 * resp_server.h: the Redis protocol listener of `tidings serve` (docs/redis.md): connection and
 * server commands, the keyspace (a stream key is a topic) and transactions, on the broker's
 * event loops.
 */
#ifndef TD_PROTO_RESP_SERVER_H
#define TD_PROTO_RESP_SERVER_H

#include "net/net.h"
#include "proto/resp/resp.h"
#include "tidings.h"

typedef struct resp_server resp_server;

typedef struct resp_server_config {
    char password[256]; /* redis.password: "" for none (AUTH then needs none) */
    bool allow_flush;   /* redis.allow.flush: FLUSHALL and FLUSHDB delete every topic */
    /* redis.max.reply.bytes (512 MiB): a read of stream entries whose reply would pass it is
     * refused with an error, so that one command cannot take the broker's memory. */
    size_t max_reply;
    /* redis.stream.node.max.entries (100) and .bytes (4096): the initial values of
     * stream-node-max-entries and stream-node-max-bytes, which CONFIG SET changes. */
    int64_t stream_node_max_entries, stream_node_max_bytes;
    resp_limits limits;
    char bind[256]; /* the listener's address, for INFO and CONFIG GET bind */
    /* The listener binds an address other than loopback on the strength of its password
     * (docs/security.md): CONFIG SET requirepass may change it but not remove it. */
    bool password_required;
    /* redis.notify.keyspace.events: the classes of keyspace notifications at start (CONFIG SET
     * notify-keyspace-events changes them); resp_notify_flags_parse's value, 0 for none. */
    int notify_flags;
    /* redis.monitor.buffer.bytes (8 MiB): a MONITOR connection with more lines than this not
     * yet written to its socket is closed, so that a slow monitor cannot hold memory. */
    size_t monitor_limit;
} resp_server_config;

/* notify-keyspace-events as Redis reads it ("KEA", "Et", "" for none): the flags, or -1 for a
 * character that is not a class. */
int resp_notify_flags_parse(const char *s, size_t n);

void resp_server_config_default(resp_server_config *c);
int resp_server_create(td_engine *e, const resp_server_config *cfg, resp_server **out);
const net_proto *resp_server_proto(void);
void resp_server_set_port(resp_server *s, int port);
/* After listening on g: blocked XREADs are woken on g's loops when partitions advance. Detach
 * once the loops have stopped. */
int resp_server_attach(resp_server *s, net_group *g);
void resp_server_detach(resp_server *s);
void resp_server_destroy(resp_server *s);

#endif /* TD_PROTO_RESP_SERVER_H */
