/*
 * net_int.h: what the files of net/ share: the broker-wide budget of buffered bytes (budget.c).
 *
 * The budget counts the bytes that connections hold in memory on behalf of their peers: input
 * buffers beyond a per-connection floor (requests not yet complete, or read ahead) and memory
 * queued for output (responses not yet sent; file ranges sent with sendfile are page cache, not
 * ours, and are not counted). Input asks before it grows: a connection whose buffer must grow
 * past the budget stops reading and waits in a FIFO queue until the bytes are free, then is
 * resumed on its own loop. Output is counted when it is queued and never refused (a response
 * must go out), but a connection that holds more than a floor of unsent output stops reading
 * while the total is over the limit, so that clients that do not read cannot make the broker
 * produce more for them.
 *
 * Deadlock: input waiters could each hold part of a request and wait for the bytes the others
 * hold, none of them ever finishing. Protocols that know a request's size before it arrives
 * (net_conn_expect) ask for all of it at once, and a waiter then holds nothing beyond its floor;
 * for those that cannot, when every byte of input counted belongs to a waiter, the head of the
 * queue is granted beyond the limit: it completes its request and frees its bytes, then the next.
 * The total therefore stays under the limit plus one request.
 *
 * Also here: the structures of loops, listeners and connections, which net.c (loops, timers,
 * tasks, listeners and accepting) and conn.c (connections: input, output, the budget) share.
 */
#ifndef TD_NET_NET_INT_H
#define TD_NET_NET_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "base/metrics.h"
#include "net/net.h"

typedef struct net_bwait net_bwait;
struct ssl_st;

/* One connection's place in the budget's queues (owned by the connection). */
struct net_bwait {
    net_bwait *next, *prev;
    size_t need;    /* input bytes asked for; 0: waits for the total to fall under the limit */
    size_t held;    /* input bytes the waiter holds already (for the deadlock rule) */
    size_t granted; /* bytes charged for it and not yet taken (budget_take) */
    bool queued;
    /* Called with the budget's mutex held, from whichever thread freed the bytes: it must only
     * post to the waiter's loop. */
    void (*wake)(net_bwait *w);
};

typedef struct net_budget {
    size_t limit;
    size_t in_used;  /* atomic: input bytes counted */
    size_t out_used; /* atomic: output bytes counted */
    size_t nwait;    /* atomic: waiters in both queues */
    pthread_mutex_t mu;
    net_bwait *in_head, *in_tail;   /* input waiters, FIFO */
    net_bwait *out_head, *out_tail; /* output waiters (need 0) */
    size_t held_waiting;            /* input bytes held by input waiters (under mu) */
    uint64_t forced;                /* atomic: grants beyond the limit by the deadlock rule */
} net_budget;

void budget_init(net_budget *b, size_t limit);
void budget_destroy(net_budget *b);
/* Counts n more input bytes if they fit and nobody waits before; false otherwise. Any thread. */
bool budget_try(net_budget *b, size_t n);
/*
 * Queues w for `need` input bytes (0: until the total is under the limit), holding `held`
 * already. Queuing a waiter already queued updates its need and keeps its place. w->wake may run
 * before this returns. Any thread, one at a time per waiter.
 */
void budget_wait(net_budget *b, net_bwait *w, size_t need, size_t held);
/* The bytes granted to w since the last call (now counted as the waiter's own); *queued tells
 * whether w still waits (a wake-up may arrive after the waiter queued again). */
size_t budget_take(net_budget *b, net_bwait *w, bool *queued);
/* Leaves the queue, and gives back what was granted and not taken. */
void budget_cancel(net_budget *b, net_bwait *w);
/* Gives back n input bytes. */
void budget_release(net_budget *b, size_t n);
/* Counts (delta > 0) or uncounts output bytes. */
void budget_out(net_budget *b, int64_t delta);
/* Whether the bytes counted reach the limit. */
bool budget_over(net_budget *b);

/* ---------------------------------------------------------------------------------------------
 * Loops, listeners and connections
 */
enum { TAG_LISTENER = 1, TAG_WAKE, TAG_CONN };

#define MAX_LISTENERS 8
#define OUT_CHUNK 16384
#define IOV_MAX_BATCH 64
#define READ_MIN 16384
/* Input a connection may buffer without asking the budget (and the scratch buffer's size):
 * requests up to this size always make progress. */
#define IN_FLOOR (64u << 10)
/* Unsent output under which a connection keeps reading even while the budget is exhausted, so
 * that clients that read their responses are served while others do not read theirs. */
#define OUT_FLOOR (64u << 10)
#define ACCEPT_RETRY_MS 100
#define ACCEPT_BACKOFF_MIN_MS 50
#define ACCEPT_BACKOFF_MAX_MS 1000

typedef struct listener {
    int tag;
    int fd;
    const net_proto *proto;
    void *proto_arg;
    int extra_conns;                /* accepted beyond max_conns (net_listen_opts) */
    const char *busy_reply;         /* answered past the limit; NULL: wait in the backlog */
    int64_t idle_ms;                /* net_listen_opts.idle_timeout_ms */
    td_metric *m_open, *m_accepted; /* connections open now, and accepted in all */
    td_metric *m_refused;           /* refused with the busy reply, or left waiting at the limit */
    net_tls *tls;                   /* NULL: plaintext */
    int port;                       /* the bound port */
    bool auth_required;             /* net_listen_opts.auth_required */
} listener;

/* ---------------------------------------------------------------------------------------------
 * TLS (tls.c): one connection's OpenSSL state. conn.c stages output for SSL_write in wbuf
 * (TLS_WBUF bytes at most, allocated only while output is staged): memory items are copied into
 * it and file ranges read with pread, since sendfile cannot encrypt. Staged bytes count in the
 * budget as memory output. A write retried after WANT_WRITE must offer the same bytes: wbuf is
 * refilled only once all of it was written.
 */
#define TLS_WBUF (64u << 10)
/* OpenSSL's read buffer with read-ahead: several records per read(2). */
#define TLS_RBUF (64u << 10)
/* A connection that has not finished its handshake this long after it was accepted is closed
 * (it holds a connection slot, and the protocol's own timeouts do not run before on_open). */
#define TLS_HANDSHAKE_MS 10000

typedef struct tls_conn {
    struct ssl_st *ssl;
    const char *name;    /* the context's name, for log lines */
    bool done;           /* the handshake finished */
    bool want_write;     /* the handshake waits for the socket to be writable */
    bool rd_wants_write; /* a read waits for writability (a TLS 1.3 KeyUpdate answered) */
    bool wr_wants_read;  /* a write waits for readability */
    bool pending_posted; /* a task reads what OpenSSL holds decrypted */
    bool failed;         /* a fatal error: no close_notify may be sent */
    bool trimmed;        /* tls_trim gave OpenSSL's buffers back; no event since */
    char *principal;     /* the verified client certificate's CN, or NULL */
    uint8_t *wbuf;
    size_t wlen, woff; /* staged bytes, and how many of them were written */
} tls_conn;

/* A connection's state with the listener's current context, on the accepted socket fd. */
tls_conn *tls_conn_new(net_tls *t, int fd);
void tls_conn_free(tls_conn *tc);
/* One handshake step: 1 done, 0 waits (want_write says for which direction), -1 failed (one
 * log line naming the peer and OpenSSL's reason was written). */
int tls_handshake(tls_conn *tc, const char *peer);
/* Like read(2) and write(2) on a non-blocking socket: > 0 bytes, 0 the peer closed (read), -1
 * with errno EAGAIN (rd_wants_write / wr_wants_read say whether the other direction is needed)
 * or EIO / EPIPE. tls_read reads records until buf is full or none is left. */
ssize_t tls_read(tls_conn *tc, void *buf, size_t n);
ssize_t tls_write(tls_conn *tc, const void *buf, size_t n);
/* Gives OpenSSL's read and write buffers back while the connection is idle (they come back on
 * its next read or write). */
void tls_trim(tls_conn *tc);
/* Sends close_notify if the socket takes it (once; no waiting for the peer's). */
void tls_shutdown(tls_conn *tc);
/* Whether OpenSSL holds decrypted bytes not yet read (no epoll event will announce them). */
bool tls_pending(tls_conn *tc);

typedef struct out_item {
    struct out_item *next;
    bool is_file;
    /* memory */
    uint8_t *p;
    size_t n, off, cap; /* cap > 0: a copy buffer that net_conn_write may append to */
    void (*free_fn)(void *);
    /* file */
    int fd;
    int64_t pos, len;
    void (*release)(void *);
    void *rarg;
} out_item;

struct net_conn {
    int tag;
    net_loop *loop;
    int fd;
    const net_proto *proto;
    void *proto_arg;
    td_metric *m_open; /* the listener's gauge of open connections */
    int64_t idle_ms;   /* the listener's idle timeout; 0: none */
    int64_t active_ms; /* the loop's clock at the connection's last event */
    void *data;
    int refs;         /* atomic */
    bool closed;      /* atomic read from other threads */
    bool close_after; /* close once output drains */
    bool paused;
    bool in_data;   /* inside process_input */
    bool waiting;   /* queued for the budget (loop thread's view) */
    bool wait_out;  /* ... because of output over the budget, not for input bytes */
    bool wait_hold; /* ... for bytes the protocol asked to hold (net_conn_hold) */
    uint32_t interest;
    uint8_t *in; /* NULL while no input is buffered */
    size_t in_start, in_len, in_cap;
    size_t in_charge; /* input bytes counted in the budget: beyond IN_FLOOR, or granted ahead */
    size_t held;      /* bytes the protocol holds outside the input buffer (net_conn_hold) */
    size_t expect;    /* the frame at the head of the input needs this many bytes (0: unknown) */
    net_bwait bw;
    out_item *out_head, *out_tail;
    size_t out_bytes;
    size_t out_mem; /* memory part of out_bytes, counted in the budget */
    char peer[64];
    net_conn *prev, *next;
    tls_conn *tls;   /* NULL on plaintext listeners: the one branch their I/O pays */
    bool opened;     /* on_open ran (at accept, or once the TLS handshake is done) */
    int64_t open_ms; /* the loop's clock at accept */
    int listen_port; /* the listener's port */
    bool auth_required; /* the listener's net_listen_opts.auth_required */
    char *user;         /* net_conn_set_user: the user the protocol authenticated, or NULL */
    net_waiter *parked; /* its waiters parked in a net_waitset (wait.c) */
};

typedef struct task {
    struct task *next;
    net_task_fn fn;
    void *arg;
} task;

struct net_loop {
    int tag; /* TAG_WAKE: the eventfd's epoll tag */
    net_group *g;
    int ep, evfd;
    pthread_t thr;
    bool started;
    pthread_mutex_t mu;
    task *tasks, *tasks_tail;
    bool wake_pending; /* under mu: the eventfd has been written and not yet read */
    net_timer **heap;
    size_t nheap, heap_cap;
    int64_t now;
    net_conn *conns;
    size_t nconns;
    bool stopping; /* atomic */
    int64_t stop_deadline;
    uint8_t *scratch;            /* IN_FLOOR bytes: reads of connections that buffer nothing */
    bool lst_off[MAX_LISTENERS]; /* listeners taken out of this loop's epoll set */
    net_timer accept_timer;      /* puts them back */
    int64_t backoff_ms;          /* after accept(2) failed for want of resources */
    net_timer log_timer;         /* loop 0: summaries of suppressed log lines */
    net_timer idle_timer;        /* closes idle connections (listeners with idle_ms) */
};

struct net_group {
    net_config cfg;
    int nloops;
    net_loop *loops;
    listener lst[MAX_LISTENERS];
    int nlst;
    net_budget budget;
    size_t max_conns; /* after net_group_start: cfg.max_conns or derived from RLIMIT_NOFILE */
    size_t nconns;    /* atomic: open connections, all loops */
    bool at_limit;    /* atomic: the limit was reached and not yet left (one log line each) */
    bool collecting;  /* the metrics collector is registered */
};

/* wait.c: cancels the connection's parked waiters (it is closing). */
void wait_conn_closed(net_conn *c);

/* conn.c */
/* Sets up a connection accepted on fd (the caller holds a connection slot); false if there was
 * no memory for it. */
bool conn_open(net_loop *l, listener *ls, int fd, const struct sockaddr_storage *ss);
/* Closes at once: the protocol's on_close runs, output is dropped, the slot is given back. */
void conn_close_now(net_conn *c);
/* An epoll event of the connection. */
void conn_event(net_conn *c, uint32_t ev);

/* net.c */
/* Puts the listeners this loop took out of its epoll set back (a slot or descriptor is free). */
void accept_resume(net_loop *l);

#endif /* TD_NET_NET_INT_H */
