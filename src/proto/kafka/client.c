/*
 * client.c: the blocking Kafka client connection of client.h. Plain sockets with poll for the
 * deadlines: a broker's fetcher thread owns its connections and waits on nothing else.
 */
#include "proto/kafka/client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tidings.h"

#define CLIENT_KEYS 128 /* API keys whose version ranges are kept */

struct kafka_client {
    int fd;
    char client_id[128];
    int32_t correlation;
    size_t max_frame;
    int16_t min_version[CLIENT_KEYS], max_version[CLIENT_KEYS]; /* -1: not served */
    td_buf in;                                                  /* the last answer's frame */
    td_arena arena;                                             /* what its decoders allocated */
};

/* Waits until fd is ready for events, or the deadline (monotonic ms). */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - td_mono_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)TD_MIN(left, 1000));
        if (n > 0)
            return (p.revents & (POLLERR | POLLNVAL)) && !(p.revents & events) ? -ECONNRESET : 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int send_all(int fd, const uint8_t *p, size_t n, int64_t deadline)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return -errno;
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc)
            return rc;
    }
    return 0;
}

static int recv_all(int fd, uint8_t *p, size_t n, int64_t deadline)
{
    while (n) {
        ssize_t r = recv(fd, p, n, 0);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        if (r == 0)
            return -ECONNRESET;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc)
            return rc;
    }
    return 0;
}

/* A non-blocking TCP connection to host:port within the deadline. */
static int dial(const char *host, int port, int64_t deadline, int *out)
{
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, service, &hints, &res);
    if (g != 0)
        return td_fail(-EHOSTUNREACH, "%s: %s", host, gai_strerror(g));
    int rc = -ECONNREFUSED;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            rc = -errno;
            close(fd);
            continue;
        }
        int err = 0;
        socklen_t len = sizeof(err);
        if ((rc = wait_fd(fd, POLLOUT, deadline)) == 0 &&
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            *out = fd;
            freeaddrinfo(res);
            return 0;
        }
        rc = rc ? rc : -(err ? err : ECONNREFUSED);
        close(fd);
    }
    freeaddrinfo(res);
    return rc;
}

int kafka_client_call(kafka_client *c, int16_t api_key, int16_t v, kafka_body_fn encode,
                      const void *arg, int64_t timeout_ms, kafka_reader *r)
{
    int64_t deadline = td_mono_ms() + timeout_ms;
    kafka_out o;
    ko_init(&o);
    int32_t corr = ++c->correlation;
    int rc = kafka_encode_request_header(&o, api_key, v, corr, c->client_id);
    if (rc == 0) {
        encode(&o, v, arg);
        ko_end(&o);
        rc = o.err ? o.err : o.nfiles ? TD_EINVAL : 0;
    }
    if (rc == 0)
        rc = send_all(c->fd, o.mem.p, o.mem.len, deadline);
    ko_free(&o);
    if (rc)
        return rc;
    uint8_t size[4];
    if ((rc = recv_all(c->fd, size, 4, deadline)) != 0)
        return rc;
    int32_t n = (int32_t)td_load_be32(size);
    if (n < 0 || (size_t)n > c->max_frame)
        return td_fail(TD_ETOOBIG, "an answer of %d bytes (at most %zu)", (int)n, c->max_frame);
    td_buf_reset(&c->in);
    if ((rc = td_buf_reserve(&c->in, (size_t)n)) != 0 ||
        (rc = recv_all(c->fd, c->in.p, (size_t)n, deadline)) != 0)
        return rc;
    c->in.len = (size_t)n;
    td_arena_free(&c->arena);
    td_arena_init(&c->arena);
    kr_init(r, c->in.p, c->in.len, &c->arena);
    int32_t got = 0;
    if (kafka_decode_response_header(r, api_key, v, &got) != 0 || got != corr)
        return td_fail(TD_EPROTO, "an answer to correlation id %d, not %d", (int)got, (int)corr);
    return 0;
}

static void api_versions_v0(kafka_out *o, int16_t v, const void *arg)
{
    (void)o, (void)v, (void)arg; /* v0 has an empty body */
}

/* ApiVersions v0's answer: error_code, api_keys [api_key, min_version, max_version]. */
static int learn_versions(kafka_client *c, kafka_reader *r)
{
    int16_t err = kr_i16(r);
    int32_t n = kr_array(r);
    for (int32_t i = 0; i < n && !r->err; i++) {
        int16_t key = kr_i16(r), lo = kr_i16(r), hi = kr_i16(r);
        if (!r->err && key >= 0 && key < CLIENT_KEYS && lo >= 0 && hi >= lo) {
            c->min_version[key] = lo;
            c->max_version[key] = hi;
        }
    }
    if (r->err || err != 0 || n < 0)
        return td_fail(TD_EPROTO, "ApiVersions answered error %d", (int)err);
    return 0;
}

int kafka_client_connect(const char *host, int port, const char *client_id, int64_t timeout_ms,
                         size_t max_frame, kafka_client **out)
{
    *out = NULL;
    kafka_client *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->fd = -1;
    snprintf(c->client_id, sizeof(c->client_id), "%s", client_id ? client_id : "tidings");
    c->max_frame = max_frame ? max_frame : 64u << 20;
    for (int k = 0; k < CLIENT_KEYS; k++)
        c->min_version[k] = c->max_version[k] = -1;
    td_buf_init(&c->in);
    td_arena_init(&c->arena);
    int64_t deadline = td_mono_ms() + timeout_ms;
    int rc = dial(host, port, deadline, &c->fd);
    kafka_reader r;
    if (rc == 0)
        rc = kafka_client_call(c, KAFKA_API_VERSIONS, 0, api_versions_v0, NULL,
                               TD_MAX(deadline - td_mono_ms(), 1), &r);
    if (rc == 0)
        rc = learn_versions(c, &r);
    if (rc) {
        kafka_client_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

void kafka_client_close(kafka_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    td_buf_free(&c->in);
    td_arena_free(&c->arena);
    free(c);
}

int16_t kafka_client_version(const kafka_client *c, int16_t api_key, int16_t min, int16_t want)
{
    if (api_key < 0 || api_key >= CLIENT_KEYS || c->max_version[api_key] < 0)
        return -1;
    int16_t v = TD_MIN(want, c->max_version[api_key]);
    return v >= min && v >= c->min_version[api_key] ? v : -1;
}
