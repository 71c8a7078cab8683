/*
 * http.h: HTTP/1.1 request parsing (RFC 9112) for the broker's HTTP listener: pure functions
 * over buffers, no sockets, no allocation (the parsed request points into the input).
 *
 * Why in-tree (docs/http-api.md has the longer version): Debian 12 packages no maintained
 * incremental HTTP/1.1 parser for C (nodejs's http-parser is archived upstream; its successor
 * llhttp and picohttpparser are not packaged), and a server needs only the request side: the
 * request line, header fields, Content-Length, chunked bodies, and their limits.
 */
#ifndef TD_PROTO_HTTP_H
#define TD_PROTO_HTTP_H

#include <sys/types.h>

#include "base/base.h"
#include "tidings.h"

#define HTTP_MAX_HEADERS 64

typedef struct http_limits {
    size_t max_head;    /* request line + header fields (431 beyond; 414 for a long target) */
    size_t max_target;  /* the request target (414) */
    size_t max_headers; /* header fields, at most HTTP_MAX_HEADERS (431) */
    int64_t max_body;   /* Content-Length or decoded chunked size (413) */
} http_limits;

/* Defaults: 16 KiB head, 8 KiB target, 64 fields, 8 MiB body. */
void http_limits_default(http_limits *l);

typedef struct http_header {
    td_slice name;  /* as sent; compare with http_name_eq (names are case-insensitive) */
    td_slice value; /* without surrounding whitespace */
} http_header;

typedef struct http_request {
    td_slice method;
    td_slice target; /* origin form "/path?query"; an absolute form is cut to its path */
    td_slice path;   /* target up to '?' (still percent-encoded) */
    td_slice query;  /* after '?' (empty if none) */
    int minor;       /* HTTP/1.<minor>: 0 or 1 */
    http_header headers[HTTP_MAX_HEADERS];
    size_t nheaders;
    int64_t content_length; /* -1: none */
    bool chunked;           /* Transfer-Encoding: chunked */
    bool keep_alive;        /* the connection stays open after the response */
    bool expect_continue;   /* Expect: 100-continue */
    size_t head_len;        /* bytes of the request line and fields, final empty line included */
} http_request;

/*
 * Parses the head of the request at p[0..n). Returns 0 when it is complete (*r filled, the body
 * starts at p + r->head_len), TD_EAGAIN when more input is needed, or an HTTP status (400, 413,
 * 414, 417, 431, 501, 505) for a request that must be refused, with *why (static) saying
 * what was wrong. A request over the limits is refused as soon as that is known, even before
 * its head is complete.
 */
int http_parse_request(const uint8_t *p, size_t n, const http_limits *lim, http_request *r,
                       const char **why);

/* Points a parsed request's slices at a copy of its head: from the bytes at `from` (where it
 * was parsed) to the same bytes at `to`. */
void http_request_rebase(http_request *r, const uint8_t *from, const uint8_t *to);

/* The value of the first header named `name` (case-insensitive), or NULL. */
const td_slice *http_header_get(const http_request *r, const char *name);
/* Case-insensitive comparison of a slice and a NUL-terminated ASCII string. */
bool http_name_eq(td_slice s, const char *name);
/* W3C Trace Context of a request (docs/tracing.md): 1 when it has exactly one `traceparent`
 * field and it is valid, with *traceparent its value, *tracestate the first `tracestate` field
 * and *nstate how many there are; 0 otherwise (the fields are then ignored, slices empty). */
int http_trace_context(const http_request *r, td_slice *traceparent, td_slice *tracestate,
                       size_t *nstate);

/*
 * Chunked bodies (RFC 9112 §7.1), decoded incrementally: feed input as it arrives; decoded
 * data is appended to out. Chunk extensions and trailer fields are read and ignored (each line
 * at most 4 KiB).
 */
typedef struct http_chunked {
    int state;
    uint64_t left; /* bytes of the current chunk still to copy */
    size_t line;   /* length of the current size/extension/trailer line */
    int64_t total; /* decoded bytes so far */
    bool digits;   /* the size line had a digit */
} http_chunked;

void http_chunked_init(http_chunked *c);
/*
 * Consumes up to n bytes of p. Returns 1 when the body is complete (*used says where it ended:
 * pipelined data may follow), 0 when all n bytes were consumed and more are needed, or an HTTP
 * status (400 malformed, 413 beyond max_body) with *why set. -ENOMEM if out cannot grow.
 */
int http_chunked_feed(http_chunked *c, const uint8_t *p, size_t n, int64_t max_body, td_buf *out,
                      size_t *used, const char **why);

/*
 * Percent-decoding of a path segment or query component into out (at most cap bytes, then
 * NUL-terminated). With plus_space, '+' becomes ' ' (query strings). Returns the decoded length,
 * or -1 for a bad escape, an encoded NUL, or output longer than cap - 1.
 */
ssize_t http_pct_decode(td_slice in, bool plus_space, char *out, size_t cap);

/*
 * Query parameters, in order: *it starts as the query; each call gives the next key and value
 * (still encoded; decode with http_pct_decode). Returns false at the end.
 */
bool http_query_next(td_slice *it, td_slice *key, td_slice *value);
/* The first value of `key` in the query, decoded into out; 1 found, 0 absent, -1 bad. */
int http_query_get(td_slice query, const char *key, char *out, size_t cap);

/* A point in time as clients give it: Unix milliseconds ("1764061234567") or ISO 8601
 * ("2026-11-25T08:00:00Z", with optional .mmm and a +hh:mm / -hh:mm offset instead of Z).
 * 0 or TD_EINVAL. Pure. */
int http_parse_time(const char *s, int64_t *ms);

/* The reason phrase of a status code ("Not Found"); "Unknown" for codes it does not know. */
const char *http_reason(int status);

/*
 * Text for JSON strings (json_scan.c): s (NUL-terminated) copied into out (cap > 0 bytes,
 * always NUL-terminated, cut short at a character boundary), every byte that is not part of
 * valid UTF-8 written as the four characters \xHH. jansson refuses strings that are not UTF-8,
 * and error messages quote what clients sent. Returns out. Pure.
 */
const char *http_utf8_clean(const char *s, char *out, size_t cap);

/* ---------------------------------------------------------------------------------------------
 * JSON measured before it is parsed (json_scan.c): the structure of a text (brackets, strings,
 * separators, nesting depth) and an estimate of the bytes jansson allocates to parse it, without
 * building anything; and the elements of an array, one at a time. Lenient inside strings and
 * primitives (jansson checks them when it parses); what it refuses is malformed JSON. Pure.
 */
#define HTTP_JSON_MAX_DEPTH 2048 /* jansson's own limit */

/* A whole text p[0..n): 0 with *cost; TD_EAGAIN when it ends too soon or TD_EPROTO when it is
 * malformed, with *err_pos where and *why (static) what. */
int http_json_measure(const uint8_t *p, size_t n, uint64_t *cost, size_t *err_pos,
                      const char **why);

typedef struct http_json_iter {
    const uint8_t *p;
    size_t n;
    size_t pos;      /* where the next element is looked for; after an error, where it was */
    int state;       /* 0: after '[', 1: after an element, 2: after ']' */
    size_t count;    /* elements so far */
    const char *why; /* after an error */
} http_json_iter;

/* Starts on p[0..n) if it is an array (its first byte after blanks is '['); false if not. */
bool http_json_array_open(http_json_iter *it, const uint8_t *p, size_t n);
/* The next element: 1 with *elem (inside the input, without surrounding blanks) and its cost
 * added to *cost; 0 once the array has ended and nothing but blanks follows it; TD_EAGAIN (the
 * input ends first) or TD_EPROTO (malformed), with it->pos and it->why. */
int http_json_array_next(http_json_iter *it, td_slice *elem, uint64_t *cost);

/* The line (from 1) and column (the characters from the line's start up to pos, as jansson
 * counts them) of position pos in p[0..n). */
void http_json_line_column(const uint8_t *p, size_t n, size_t pos, int *line, int *column);

/* ---------------------------------------------------------------------------------------------
 * Request guards (guard.c, docs/security.md): pure checks of header values. Lists are
 * comma-separated configuration strings.
 */
/* A Host value ("name[:port]", "[v6][:port]") names the broker acceptably: an IP address,
 * localhost or a name under .localhost, or an entry of `allowed` ("*" any; ".example.com" the
 * name and every name under it; other entries exact, case-insensitive). */
bool http_host_allowed(td_slice host, const char *allowed);
/* An Origin is listed in `allowed` (exactly, case-insensitive), or `allowed` has "*" (then *any
 * is set, and cleared for an exact entry). */
bool http_origin_listed(td_slice origin, const char *allowed, bool *any);
/* An Origin ("scheme://host[:port]") names the same host and port as the request's Host. */
bool http_origin_same(td_slice origin, td_slice host);
/* A Content-Type is JSON: application/json or application/...+json, parameters allowed. */
bool http_content_type_json(td_slice content_type);

/* ---------------------------------------------------------------------------------------------
 * Credentials (auth.c, docs/security.md#authentication-http): the Authorization header.
 */
enum { HTTP_AUTH_BASIC = 1, HTTP_AUTH_BEARER = 2 };
/* The longest Basic value accepted: a user name of TD_USER_NAME_MAX bytes, ':', a password of
 * TD_USER_PASSWORD_MAX bytes, in base64. */
#define HTTP_BASIC_MAX ((TD_USER_NAME_MAX + 1 + TD_USER_PASSWORD_MAX + 2) / 3 * 4)
#define HTTP_BEARER_MAX 512 /* a bearer token's longest form (ours are TD_TOKEN_LEN) */

typedef struct http_credentials {
    int scheme; /* HTTP_AUTH_BASIC or HTTP_AUTH_BEARER */
    char user[TD_USER_NAME_MAX + 1];          /* Basic: NUL-terminated, never empty */
    char password[TD_USER_PASSWORD_MAX + 1];  /* Basic: password_len bytes (may hold NUL) */
    size_t password_len;
    td_slice token; /* Bearer: the token68, inside the parsed value */
} http_credentials;

/*
 * Parses an Authorization value (RFC 9110 §11.6.2): "Basic <base64 of user:password>" (RFC
 * 7617; padding optional) or "Bearer <token68>" (RFC 6750), scheme names case-insensitive.
 * 0 with *out; TD_EUNSUPPORTED for another scheme; TD_EPROTO for a malformed value (bad
 * base64, no colon, an empty user name, a user name or password over the limits, characters a
 * token68 cannot have), with *why (static). Pure: allocates nothing, reads only v.
 */
int http_auth_parse(td_slice v, http_credentials *out, const char **why);

/* ---------------------------------------------------------------------------------------------
 * The server (server.c): the REST API on the broker's event loops. See docs/http-api.md.
 */
struct td_engine;
struct net_proto;
struct td_coord;

typedef struct http_server_config {
    http_limits limits;
    int64_t request_timeout_ms; /* a request's head and body must arrive within this (408) */
    int64_t idle_timeout_ms;    /* a keep-alive connection without a request is closed */
    int32_t default_partitions; /* of topics created without a partition count */
    struct td_coord *coord;     /* the group coordinator the Kafka listener shares */
    int64_t sse_heartbeat_ms;     /* a comment on live subscriptions idle this long */
    int64_t sse_stall_timeout_ms; /* a subscriber at the output limit this long is dropped */
    char allowed_hosts[1024];        /* http.allowed.hosts: names besides IPs and localhost */
    char cors_allowed_origins[1024]; /* http.cors.allowed.origins: "" (no CORS headers) */
    /* schema.registry.prefix: where the schema registry's REST API is served ("/registry"; ""
     * at the root, beside the other routes). registry_only: a listener of the registry alone
     * (schema.registry.listen), at its root, besides /health and /ready. */
    char registry_prefix[256];
    bool registry_only;
} http_server_config;

/* Defaults: the parser's limits, 30 s per request, 120 s idle. */
void http_server_config_default(http_server_config *c);

typedef struct http_server http_server;
int http_server_create(struct td_engine *e, const http_server_config *cfg, http_server **out);
void http_server_destroy(http_server *s);
/* The port of the schema registry's own listener (schema.registry.listen), once bound: its
 * connections get the registry at the root. Before the loops start. */
void http_server_set_registry_port(http_server *s, int port);
/* GET /v1/cluster describes cl (NULL: a single broker, self alone); self is this broker as it
 * registers (copied). Before the loops start. */
struct td_cluster;
struct td_cluster_broker;
void http_server_set_cluster(http_server *s, struct td_cluster *cl,
                             const struct td_cluster_broker *self);
/* /ready answers 200 once this is set (the listeners are up), 503 before. */
void http_server_set_ready(http_server *s, bool ready);
/* For a server stopping, before its loops stop: stops the redrives running (between batches)
 * and waits for them, so that nothing appends or wakes loops afterwards. */
void http_server_stop_work(http_server *s);
const struct net_proto *http_server_proto(void);

#endif /* TD_PROTO_HTTP_H */
