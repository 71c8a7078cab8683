/*
 * remote.h: the tidings command against a running broker, over its HTTP API (docs/http-api.md),
 * with libcurl for HTTP and jansson for JSON.
 */
#ifndef TD_CLI_REMOTE_H
#define TD_CLI_REMOTE_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "tidings.h"

typedef struct cli_remote {
    CURL *curl;
    char *base; /* scheme://host:port, no trailing slash */
    char err[CURL_ERROR_SIZE];
} cli_remote;

/* The broker to talk to: the --server flag, else $TIDINGS_SERVER; NULL for local mode. */
const char *cli_server(const char *flag);

/* Prepares requests to `server` (a URL; the scheme defaults to http and the port to 8080).
 * EXIT_OK, or prints why not and returns EXIT_USAGE. */
int cli_remote_open(const char *server, cli_remote *r);
void cli_remote_close(cli_remote *r);

/* A path segment percent-escaped (topic and group names), malloc'd; NULL when out of memory. */
char *cli_remote_escape(cli_remote *r, const char *segment);
/* A topic name (or any string) as one path segment: every byte but RFC 3986's unreserved ones
 * ([A-Za-z0-9-._~]) percent-encoded, into out, which holds 3 * TD_TOPIC_NAME_MAX + 1 bytes for
 * a name (longer strings are cut); out is returned. Topic names hold '%', '?', ';' and ':'. */
#define CLI_SEGMENT_MAX (3 * TD_TOPIC_NAME_MAX + 1)
const char *cli_path_segment(const char *s, char out[CLI_SEGMENT_MAX]);

/* One request: `path` (escaped, starting with '/') with `body` as JSON when not NULL. On a 2xx
 * answer, *out (when out is not NULL) is the answer's JSON (NULL for an empty body) and the
 * result is EXIT_OK. Otherwise prints "tidings: <what>: <the broker's message>" and returns the
 * exit code: EXIT_NOTFOUND for 404, EXIT_USAGE for requests the
 * broker found invalid, EXIT_UNREACHABLE when there was no answer, EXIT_RUNTIME otherwise. */
int cli_remote_call(cli_remote *r, const char *method, const char *path, json_t *body, json_t **out,
                    const char *what);

/* The same with a body already serialized (len bytes of JSON; NULL for none). */
int cli_remote_call_text(cli_remote *r, const char *method, const char *path, const char *payload,
                         size_t len, json_t **out, const char *what);

/* A request whose answer the caller reads whatever its status (the schema registry's REST API,
 * which answers in its own format): payload (len bytes, NULL for none) sent as content_type,
 * which is also the Accept header. EXIT_OK with *status and *answer (malloc'd, NUL-terminated,
 * *answer_len bytes, "" when empty); only a failure to reach the broker is printed and returned
 * (EXIT_UNREACHABLE). */
int cli_remote_raw(cli_remote *r, const char *method, const char *path, const char *content_type,
                   const char *payload, size_t len, long *status, char **answer,
                   size_t *answer_len, const char *what);

/* The exit code of an error answer (status and body), after printing "tidings: <what>: <the
 * message>" and, for 401 and 403, whose credentials to give: the tidings API's errors
 * ({"error": {"code", "message"}}) and the schema registry's ({"error_code", "message"}). */
int cli_answer_error(long status, const char *text, size_t len, const char *what);

/* A GET whose 404 is an answer, not an error: *exists tells which (*out is NULL then), and
 * other failures are printed and returned as cli_remote_call does. */
int cli_remote_get_if_exists(cli_remote *r, const char *path, json_t **out, bool *exists,
                             const char *what);

/* A streamed GET (Server-Sent Events): fn receives the body's bytes as they come and returns
 * false to stop. `last_event_id` is sent as Last-Event-ID when not NULL. *status is the answer's
 * HTTP status (0: no answer). Returns EXIT_OK when the stream ended or was stopped (by fn, or by
 * SIGINT or SIGTERM); for an error answer, prints it and returns its exit code (as
 * cli_remote_call); without an answer, or when the connection broke, returns EXIT_UNREACHABLE
 * quietly: cli_remote_why() says why. */
typedef bool (*cli_stream_fn)(void *arg, const char *p, size_t n);
int cli_remote_stream(cli_remote *r, const char *path, const char *last_event_id, cli_stream_fn fn,
                      void *arg, const char *what, long *status);
const char *cli_remote_why(const cli_remote *r);

/* True once SIGINT or SIGTERM arrived during a stream (the stream then ends). */
bool cli_interrupted(void);

/* Prints j compactly on one line of standard output. */
void cli_json_print(const json_t *j);

#endif /* TD_CLI_REMOTE_H */
