/*
 * net.h: event loops, listeners and connections (docs/design.md §4).
 *
 * A net_loop is one thread running epoll. It owns the connections accepted on it (every loop
 * listens on every listener's socket with EPOLLEXCLUSIVE, so the kernel spreads accepts), its
 * timers (a binary heap), and a queue of tasks that other threads post to it, signalled through
 * an eventfd. Everything about a connection happens on its loop's thread; other threads reach a
 * connection only by posting a task to its loop while holding a reference (net_conn_ref).
 *
 * A connection has a bounded input buffer and an output chain of memory blocks and file ranges;
 * file ranges go out with sendfile(2), memory with writev(2). The protocol sees input through
 * on_data, which consumes whole frames and returns how many bytes it used. When the output
 * exceeds out_limit, the loop stops reading from the connection until it drains (back
 * pressure), and a protocol may pause input itself (net_conn_pause) while it waits for work in
 * flight, resuming it later.
 *
 * One budget per group (net_config.buffer_memory, the setting net.buffer.memory.bytes) bounds
 * the bytes all connections hold for their peers: input buffered beyond a 64 KiB floor per
 * connection, and output queued in memory. A connection whose input must grow past it stops
 * reading until bytes come back, in arrival order; one that holds more than 64 KiB of unsent
 * output stops reading while the budget is exhausted. An input buffer exists only while a
 * connection holds unconsumed bytes: idle connections hold none. No request larger than the
 * budget is ever buffered (net_conn_max_input). See net_int.h for the rules and deadlocks.
 *
 * Connections are limited to max_conns over all listeners (max.connections, by default derived
 * from RLIMIT_NOFILE), beyond which new connections wait in the kernel's listen backlog or get
 * a listener's busy reply; when accept(2) fails for want of descriptors, a loop backs off
 * instead of retrying at once.
 */
#ifndef TD_NET_NET_H
#define TD_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/metrics.h"

typedef struct net_loop net_loop;
typedef struct net_conn net_conn;
typedef struct net_group net_group;

typedef struct net_tls net_tls;

typedef void (*net_task_fn)(void *arg);

typedef struct net_timer {
    int64_t due_ms; /* monotonic */
    net_task_fn fn;
    void *arg;
    size_t heap_index; /* (size_t)-1 when not armed */
} net_timer;

#define NET_TIMER_INIT {0, NULL, NULL, (size_t)-1}

/* A protocol: callbacks run on the connection's loop thread. */
typedef struct net_proto {
    const char *name;
    /* A new connection: set state with net_conn_set_data. Returns 0, or < 0 to refuse. */
    int (*on_open)(net_conn *c);
    /* Input is available: consume whole frames and return the bytes used (0: need more);
     * < 0 closes the connection. Not called while the connection is paused. The bytes are the
     * connection's input buffer, valid during the call; the protocol may modify them in place
     * (a produce sets base offsets in the batches it appends). */
    ssize_t (*on_data)(net_conn *c, uint8_t *p, size_t n);
    /* The output fell below the limit again (optional). */
    void (*on_drain)(net_conn *c);
    /* The connection is closing (peer gone, error, or shutdown): release protocol state that
     * nothing else references. Work in flight still holds its connection references. */
    void (*on_close)(net_conn *c);
    size_t max_input;       /* the largest frame a peer may send: the input buffer's bound */
    size_t out_limit;       /* stop reading while this much output is queued */
} net_proto;

typedef struct net_config {
    int loops;              /* event-loop threads; 0: one per online core */
    int64_t shutdown_grace_ms; /* how long shutdown waits for in-flight work and output */
    td_metrics *metrics;    /* counts connections per listener's protocol; may be NULL */
    /* The budget of buffered bytes; 0: 1/8 of the memory there is (physical, or the cgroup's
     * limit), between NET_BUFFER_MEMORY_DEFAULT_MIN and _MAX. At least NET_BUFFER_MEMORY_MIN. */
    size_t buffer_memory;
    /* Connections open at most, over all listeners; 0: derived when the group starts from
     * RLIMIT_NOFILE, less the descriptors open then and a headroom. */
    size_t max_conns;
    /* Descriptors the derivation of max_conns leaves for what the broker opens later than the
     * start (the partitions max.partitions still allows: one each). */
    size_t reserve_fds;
} net_config;

#define NET_BUFFER_MEMORY_MIN ((size_t)1 << 20)
#define NET_BUFFER_MEMORY_DEFAULT_MIN ((size_t)64 << 20)
#define NET_BUFFER_MEMORY_DEFAULT_MAX ((size_t)4 << 30)

/* Per listener (net_group_listen; NULL: none of these). */
typedef struct net_listen_opts {
    /* Connections this listener may still accept when max_conns are open, so that health
     * checks and metrics answer while the data protocols hold every connection. */
    int extra_conns;
    /* Past the limit, accept and send this before closing (Redis's "-ERR max number of
     * clients reached"); NULL: leave new connections in the listen backlog until some close. */
    const char *busy_reply;
    /* A connection that sent nothing and had nothing to send for this long, with no work of the
     * protocol in flight (no reference held, not paused), is closed, as Kafka closes idle
     * connections after connections.max.idle.ms. 0: never. Checked once a second. */
    int64_t idle_timeout_ms;
    /* A TLS listener: its connections do the TLS handshake before the protocol sees them
     * (on_open runs once it is done) and every byte goes through OpenSSL. NULL: plaintext. The
     * context stays the caller's and must outlive the group. A TLS listener should have no
     * busy_reply (it would go out in plaintext). */
    net_tls *tls;
    /* Clients must authenticate with a user (SASL, AUTH, HTTP Basic or a token) before the
     * protocol serves them: <proto>.auth / <proto>.tls.auth = required (docs/security.md). */
    bool auth_required;
} net_listen_opts;

/*
 * TLS server settings (tls.c, OpenSSL): TLS 1.2 and 1.3 only, renegotiation off. With client
 * authentication, client certificates are verified against ca_file; `requested` asks for one and
 * serves clients without, `required` refuses them in the handshake.
 */
typedef enum net_tls_client_auth {
    NET_TLS_CLIENT_NONE = 0,
    NET_TLS_CLIENT_REQUESTED,
    NET_TLS_CLIENT_REQUIRED,
} net_tls_client_auth;

typedef struct net_tls_config {
    const char *name;      /* for log lines and errors ("kafka.tls") */
    const char *cert_file; /* PEM: the certificate, then its chain */
    const char *key_file;  /* PEM: its private key (unencrypted) */
    const char *ca_file;   /* PEM: CAs client certificates must chain to; NULL: none */
    net_tls_client_auth client_auth;
} net_tls_config;

/* Loads the files into a context. TD_ECONFIG with td_last_error naming the file and OpenSSL's
 * reason (unreadable, not PEM, key not matching the certificate). The strings are copied. */
int net_tls_create(const net_tls_config *cfg, net_tls **out);
/* Reads the same files again (any thread): connections accepted afterwards use the new
 * certificate, open ones keep the one they began with. On failure the old context stays and
 * TD_ECONFIG is returned with td_last_error saying why. */
int net_tls_reload(net_tls *t);
void net_tls_destroy(net_tls *t);

/* Creates `loops` event loops (not yet running). */
int net_group_create(const net_config *cfg, net_group **out);
/*
 * Binds and listens on host:port (port 0: an ephemeral port) for a protocol. *bound_port (may
 * be NULL) gets the port. -errno (for example -EADDRINUSE) with td_fail detail on failure.
 */
int net_group_listen(net_group *g, const char *host, int port, const net_proto *proto,
                     void *proto_arg, const net_listen_opts *opts, int *bound_port);
/* Starts the loop threads. */
int net_group_start(net_group *g);
/*
 * Graceful stop: closes the listeners, lets connections finish work in flight and write their
 * output for up to shutdown_grace_ms, then closes everything and joins the threads.
 */
void net_group_stop(net_group *g);
void net_group_destroy(net_group *g);
int net_group_size(const net_group *g);
/* max_conns as set or derived (after net_group_start). */
size_t net_group_max_conns(const net_group *g);
net_loop *net_group_loop(net_group *g, int i);

/* Runs fn(arg) on the loop's thread (thread-safe; from any thread). Returns -ENOMEM or 0. */
int net_loop_post(net_loop *l, net_task_fn fn, void *arg);
/* Monotonic milliseconds as the loop last saw them (loop thread). */
int64_t net_loop_now(net_loop *l);
/* Timers (loop thread only). The timer struct is the caller's and must stay valid while armed. */
void net_timer_start(net_loop *l, net_timer *t, int64_t delay_ms, net_task_fn fn, void *arg);
void net_timer_stop(net_loop *l, net_timer *t);
bool net_loop_stopping(net_loop *l);

/*
 * Readers that wait (wait.c): Kafka fetches short of min_bytes, Redis XREAD BLOCK, live HTTP
 * subscriptions, long-polling queue receives. One mechanism parks them, wakes them and retries
 * them, whatever the protocol:
 *
 * - A set (net_waitset) is one kind of waiter and the events that wake it. It keeps, per event
 *   loop, the list of its waiters parked on that loop; the lists are made at the set's first
 *   park on a loop's group (one per loop of the group).
 * - net_wait_wake (any thread: a partition's high-watermark hook, a queue's notification) posts
 *   at most one task per loop that has waiters, coalesced until the task runs, and none at all
 *   while the set has no waiter. The task calls each waiter's retry once.
 * - A waiter may have a deadline, and a period at which it is retried even without a wake-up
 *   (what falls due by the clock: queue redeliveries). At its deadline (or when its loop stops)
 *   it is unparked and retried a last time with `final`, which must answer.
 * - A connection that closes cancels its parked waiters before its protocol's on_close, so that
 *   on_close may free them.
 *
 * The cost of a wake-up is one pass over the set's waiters of the loop; a waiter that is not
 * answered stays where it is. Everything but net_wait_wake and net_waitset_count runs on the
 * waiter's connection's loop.
 */
typedef struct net_waitset net_waitset;
typedef struct net_waiter net_waiter;

/*
 * On the waiter's loop, holding a reference on its connection. Not final (a wake-up or the
 * period): returns false when w still waits (parked, untouched), or true once it is done with
 * w, having called net_wait_cancel(w) before anything that may free it (answering may close the
 * connection). final (the deadline passed, or the loop stops): w is no longer parked, and the
 * call answers; its result is ignored.
 */
typedef bool (*net_wait_fn)(net_waiter *w, bool final);

/* Embedded in the protocol's state; every field is the mechanism's (net_waiter_init). */
struct net_waiter {
    net_wait_fn retry;
    net_conn *c;
    struct net_waitslot *slot; /* the set's slot of c's loop, while parked; NULL otherwise */
    net_waiter *prev, *next;   /* in the slot's list */
    net_waiter *cprev, *cnext; /* in c's parked waiters */
    net_timer timer;           /* deadline or period */
    int64_t deadline;          /* loop time (ms); INT64_MAX: none */
    int64_t period_ms;         /* 0: only wake-ups and the deadline retry */
};

int net_waitset_create(net_waitset **out);
/* Every waiter must have been cancelled (its connections closed). */
void net_waitset_destroy(net_waitset *set);
void net_waiter_init(net_waiter *w, net_wait_fn retry);
/*
 * Parks w for connection c on c's loop, retried at every wake-up of the set, every period_ms
 * (0: never) and a last time at timeout_ms from now (< 0: no deadline). The caller tried before
 * parking and must try once more after: an event between its first try and the parking found
 * nobody to wake (net_wait_cancel if that try answers). 0, or -ENOMEM (not parked: no memory
 * for the set's lists, or c belongs to another group than the connections parked before).
 */
int net_wait_park(net_waitset *set, net_waiter *w, net_conn *c, int64_t timeout_ms,
                  int64_t period_ms);
/* Unparks w (stops its timer); nothing if it is not parked. */
void net_wait_cancel(net_waiter *w);
bool net_wait_parked(const net_waiter *w);
/* Any thread: retries every parked waiter of the set soon, on its loop. */
void net_wait_wake(net_waitset *set);
/* The same with the signature of a broker hook (broker_add_advance_hook): arg is the set. */
void net_wait_wake_hook(void *set);
/* Any thread: how many waiters are parked, over all loops. */
size_t net_waitset_count(net_waitset *set);

/* Connection, loop thread only unless noted. */
void net_conn_set_data(net_conn *c, void *data);
void *net_conn_data(net_conn *c);
void *net_conn_proto_arg(net_conn *c);
net_loop *net_conn_loop(net_conn *c);
const char *net_conn_peer(net_conn *c); /* "127.0.0.1:54321" */
/* The socket's descriptor (for listings such as Redis's CLIENT LIST; any thread, constant while
 * the connection is open). */
int net_conn_fd(net_conn *c);
/* The port of the listener that accepted the connection (what Kafka's metadata advertises to
 * this client). Any thread. */
int net_conn_listen_port(net_conn *c);
/* The principal a verified client certificate names (its subject's CN), valid while the
 * connection is; NULL without a verified certificate. */
const char *net_conn_cert_principal(net_conn *c);
/* Who the connection is: the user the protocol authenticated (net_conn_set_user), else the
 * client certificate's principal, else NULL (anonymous). Valid until the next
 * net_conn_set_user or the connection's end. */
const char *net_conn_principal(net_conn *c);
/* Sets (a copy of) the user a protocol's authentication established; NULL forgets it (a
 * failed re-authentication, Redis's RESET). 0 or -ENOMEM. */
int net_conn_set_user(net_conn *c, const char *user);
/* Whether the listener that accepted the connection requires its clients to authenticate
 * (net_listen_opts.auth_required): the protocol refuses everything but its authentication
 * exchange until net_conn_set_user. Any thread. */
bool net_conn_auth_required(net_conn *c);
/* References keep the struct (not the socket) alive; any thread may ref/unref. */
void net_conn_ref(net_conn *c);
void net_conn_unref(net_conn *c);
bool net_conn_closed(net_conn *c);
/* Queues bytes (copied). */
int net_conn_write(net_conn *c, const void *p, size_t n);
/* Queues a memory block that is freed with free_fn(p) once sent (ownership passes). */
int net_conn_write_owned(net_conn *c, void *p, size_t n, void (*free_fn)(void *));
/* Queues a file range sent with sendfile; release(arg) runs once it is sent or dropped. */
int net_conn_write_file(net_conn *c, int fd, int64_t pos, int64_t len, void (*release)(void *),
                        void *arg);
/* Frees the queued output that has not begun to go out: every item after the partly sent one
 * (if any), so that what the peer gets is a prefix of what was queued, cut between two writes.
 * A protocol that queues each message as one write thereby drops whole messages (HTTP: the
 * events of a subscriber that stopped reading, before its final error). Returns the bytes
 * dropped. */
size_t net_conn_drop_unsent(net_conn *c);
/* Grows the socket's send buffer by `bytes` beyond what it holds now, so that a last message
 * fits in it even while the peer reads nothing: once in the kernel, it reaches the peer whenever
 * the peer reads, also after the connection was closed. Best effort (the system caps send
 * buffers at net.core.wmem_max): 0 when the room was made, -ENOBUFS or -errno otherwise. */
int net_conn_reserve_send(net_conn *c, size_t bytes);
/* Starts sending what was queued (also happens after every on_data). */
void net_conn_flush(net_conn *c);
size_t net_conn_out_bytes(net_conn *c);
/*
 * Whether the connection should stop taking requests for now: its output is at out_limit, or
 * it holds more than its floor of unsent output while the budget is exhausted. The loop checks
 * this between on_data calls; a protocol that handles several frames in one call checks it
 * between frames and returns what it used (the rest is offered again once output drains).
 */
bool net_conn_output_full(net_conn *c);
/* The largest frame the connection may buffer: the protocol's max_input, or the whole budget
 * if that is smaller. A protocol refuses larger frames with its own error. */
size_t net_conn_max_input(net_conn *c);
/* From on_data, before it returns: the frame at the head of the input it leaves needs `bytes`
 * in all (Kafka's size prefix, HTTP's Content-Length). The buffer then grows to the whole frame
 * at once, asking the budget once, so that a connection never holds part of a frame while it
 * waits for the budget. Without it the buffer grows step by step. */
void net_conn_expect(net_conn *c, size_t bytes);
/*
 * The protocol holds `total` bytes for the connection outside its input buffer (an HTTP body it
 * collects), counted in the budget like input. True when they are counted. False when the budget
 * has no room for them: nothing more is counted, on_data is not called again until the bytes
 * are granted, and then the connection's buffered input is offered again (the protocol asks
 * again and gets true). A smaller total gives bytes back; 0 gives all back, which closing the
 * connection also does. A protocol asks for a whole body at once when it knows its size.
 */
bool net_conn_hold(net_conn *c, size_t total);
/* Stops / restarts calling on_data; resume re-offers buffered input. */
void net_conn_pause(net_conn *c);
void net_conn_resume(net_conn *c);
/* Closes after the queued output is sent (or at once when `now`). */
void net_conn_close(net_conn *c, bool now);

/*
 * What the first bytes of a connection look like (sniff.c): a listener that cannot parse them
 * says which protocol the peer seems to speak. Only a guess from a few bytes: call it on input
 * the listener's own protocol has already refused.
 */
typedef enum net_sniff_kind {
    NET_SNIFF_UNKNOWN = 0,
    NET_SNIFF_TLS,  /* 0x16 0x03: a TLS handshake record */
    NET_SNIFF_HTTP, /* an HTTP method and a space */
    NET_SNIFF_RESP, /* '*' and a digit: a Redis command */
} net_sniff_kind;
net_sniff_kind net_sniff(const uint8_t *p, size_t n);
/* "a TLS handshake (ClientHello)", "an HTTP request", ... */
const char *net_sniff_describe(net_sniff_kind k);

#endif /* TD_NET_NET_H */
