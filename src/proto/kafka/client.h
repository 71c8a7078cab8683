/*
 * client.h: a blocking Kafka client connection, for what one broker asks another (a follower's
 * fetches from its leader, as Kafka's replica fetcher thread does: docs/clustering.md). One
 * thread uses a connection at a time; each call waits for its answer, within a deadline.
 *
 * On connect it asks ApiVersions (v0, which every broker answers) and keeps the peer's version
 * range of every API, so that a call can use the highest version both sides speak.
 */
#ifndef TD_PROTO_KAFKA_CLIENT_H
#define TD_PROTO_KAFKA_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/kafka/kafka.h"

typedef struct kafka_client kafka_client;

/* Connects to host:port (a name or an address) within timeout_ms and learns the peer's API
 * versions. max_frame bounds an answer's size (0: 64 MiB). 0; -ETIMEDOUT; -errno of the
 * connection; TD_EPROTO for a peer that does not answer as a Kafka broker. */
int kafka_client_connect(const char *host, int port, const char *client_id, int64_t timeout_ms,
                         size_t max_frame, kafka_client **out);
void kafka_client_close(kafka_client *c);

/* The highest version of api_key that the peer serves and that is at most want (the caller's
 * highest); -1 when the peer serves none of them (or below min). */
int16_t kafka_client_version(const kafka_client *c, int16_t api_key, int16_t min, int16_t want);

/* A request's body, written into o at version v. */
typedef void (*kafka_body_fn)(kafka_out *o, int16_t v, const void *arg);

/* Sends one request of (api_key, v) whose body encode writes, and waits up to timeout_ms for
 * its answer: *r then reads the answer's body (after its header), in memory the connection
 * owns until its next call or close (a decoder's allocations go to that memory's arena too).
 * 0; -ETIMEDOUT; -ECONNRESET or another -errno (the connection is then unusable: close it);
 * TD_EPROTO for an answer that is not this request's; TD_ETOOBIG past max_frame. */
int kafka_client_call(kafka_client *c, int16_t api_key, int16_t v, kafka_body_fn encode,
                      const void *arg, int64_t timeout_ms, kafka_reader *r);

#endif /* TD_PROTO_KAFKA_CLIENT_H */
