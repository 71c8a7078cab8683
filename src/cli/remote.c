/*
 * remote.c: requests to a running broker's HTTP API. One libcurl handle per command, reused
 * for every request it makes (one keep-alive connection).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h" /* td_json_shorten_reals and td_buf: pure code, no engine access */
#include "cli/cli.h"
#include "cli/remote.h"

#define DEFAULT_PORT "8080"

const char *cli_server(const char *flag)
{
    if (flag) /* --server '' is local mode, whatever the environment says */
        return *flag ? flag : NULL;
    const char *env = getenv("TIDINGS_SERVER");
    return env && *env ? env : NULL;
}

int cli_remote_open(const char *server, cli_remote *r)
{
    memset(r, 0, sizeof(*r));
    int ac = cli_auth_load();
    if (ac != EXIT_OK)
        return ac;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "tidings: cannot initialize libcurl\n");
        return EXIT_RUNTIME;
    }
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    int code = EXIT_OK;
    /* Without a scheme, http (libcurl's own default would be https). */
    char full[2048];
    snprintf(full, sizeof(full), "%s%s", strstr(server, "://") ? "" : "http://", server);
    if (!u || curl_url_set(u, CURLUPART_URL, full, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        fprintf(stderr,
                "tidings: --server takes the broker's HTTP address, like "
                "http://127.0.0.1:8080, not '%s'\n",
                server);
        code = EXIT_USAGE;
        goto out;
    }
    /* host:port without a scheme, or a URL without a port: the broker's default port. */
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
        curl_url_set(u, CURLUPART_PORT, DEFAULT_PORT, 0);
    curl_url_set(u, CURLUPART_PATH, "", 0);
    curl_url_set(u, CURLUPART_QUERY, NULL, 0);
    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
    if (curl_url_get(u, CURLUPART_URL, &path, 0) != CURLUE_OK) {
        code = EXIT_RUNTIME;
        goto out;
    }
    size_t n = strlen(path);
    while (n > 0 && path[n - 1] == '/')
        path[--n] = 0;
    r->base = strdup(path);
    r->curl = curl_easy_init();
    if (!r->base || !r->curl) {
        fprintf(stderr, "tidings: out of memory\n");
        code = EXIT_RUNTIME;
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
    if (code != EXIT_OK)
        cli_remote_close(r);
    return code;
}

void cli_remote_close(cli_remote *r)
{
    if (r->curl)
        curl_easy_cleanup(r->curl);
    free(r->base);
    r->curl = NULL;
    r->base = NULL;
    curl_global_cleanup();
}

char *cli_remote_escape(cli_remote *r, const char *segment)
{
    char *e = curl_easy_escape(r->curl, segment, 0);
    char *copy = e ? strdup(e) : NULL;
    curl_free(e);
    return copy;
}

const char *cli_path_segment(const char *s, char out[CLI_SEGMENT_MAX])
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *c = (const unsigned char *)s; *c && o + 4 <= CLI_SEGMENT_MAX; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '.' || *c == '_' || *c == '~') {
            out[o++] = (char)*c;
        } else {
            out[o++] = '%';
            out[o++] = hex[*c >> 4];
            out[o++] = hex[*c & 15];
        }
    }
    out[o] = 0;
    return out;
}

/* An answer's body, kept NUL-terminated past its length for the error messages. */
typedef td_buf body;

static bool body_add(body *b, const char *p, size_t n)
{
    if (n == SIZE_MAX || td_buf_reserve(b, n + 1) != 0)
        return false;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
    return true;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    return body_add(arg, p, size * nmemb) ? size * nmemb : 0;
}

static bool auth_is_token(void)
{
    const char *w = cli_auth_who();
    return w && !strcmp(w, "the API token's user");
}

/* The exit code of a schema registry's error (Confluent's "error_code"): a request it finds
 * invalid (a version, a level, a mode or a subject name) is a usage error; an invalid schema, a
 * refused operation (READONLY mode, a referenced schema, an ID in use) is a failure. */
static int registry_code(json_int_t code)
{
    if (code == 42202 || code == 42203 || code == 42204 || code == 42208)
        return EXIT_USAGE;
    return EXIT_RUNTIME;
}

int cli_answer_error(long status, const char *text, size_t len, const char *what)
{
    json_t *j = len ? json_loadb(text, len, JSON_ALLOW_NUL, NULL) : NULL;
    json_t *err = json_object_get(j, "error");
    const char *code = json_string_value(json_object_get(err, "code"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    /* The schema registry answers as Confluent's: {"error_code": 40401, "message": "..."}. */
    json_t *reg = json_object_get(j, "error_code");
    if (!msg && json_is_integer(reg))
        msg = json_string_value(json_object_get(j, "message"));
    if (msg)
        fprintf(stderr, "tidings: %s: %s\n", what, msg);
    else
        fprintf(stderr, "tidings: %s: the broker answered HTTP %ld\n", what, status);
    if (status == 401 && !cli_auth_who())
        fprintf(stderr, "(the broker needs credentials: --user NAME with --password-file, "
                        "--password-stdin or $TIDINGS_PASSWORD; or --token-file / "
                        "$TIDINGS_TOKEN)\n");
    else if (status == 401)
        fprintf(stderr, "(the broker refused the credentials of %s)\n", cli_auth_who());
    else if (status == 403)
        fprintf(stderr, "(permission denied to %s%s)\n",
                cli_auth_who() && !auth_is_token() ? "user " : "",
                cli_auth_who() ? cli_auth_who() : "an anonymous client");
    int rc = EXIT_RUNTIME;
    if (status == 401 || status == 403)
        rc = EXIT_DENIED;
    else if (status == 404)
        rc = EXIT_NOTFOUND;
    else if (status == 400 && code &&
             (!strcmp(code, "invalid_argument") || !strcmp(code, "invalid_name") ||
              !strcmp(code, "invalid_config") || !strcmp(code, "invalid_pattern") ||
              !strcmp(code, "too_many_partitions")))
        rc = EXIT_USAGE;
    else if (status == 422 && json_is_integer(reg))
        rc = registry_code(json_integer_value(reg));
    json_decref(j);
    return rc;
}

static int answer_error(long status, const body *b, const char *what)
{
    return cli_answer_error(status, (const char *)b->p, b->len, what);
}

static int transport_error(cli_remote *r, CURLcode cc, const char *what)
{
    fprintf(stderr, "tidings: %s: cannot reach the broker at %s: %s\n", what, r->base,
            r->err[0] ? r->err : curl_easy_strerror(cc));
    return EXIT_UNREACHABLE;
}

static void prepare(cli_remote *r, const char *method, const char *path, char *url, size_t cap)
{
    snprintf(url, cap, "%s%s", r->base, path);
    curl_easy_reset(r->curl);
    r->err[0] = 0;
    curl_easy_setopt(r->curl, CURLOPT_URL, url);
    curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, r->err);
    curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(r->curl, CURLOPT_USERAGENT, "tidings/" TD_VERSION_STRING);
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(r->curl, CURLOPT_CUSTOMREQUEST, method);
    cli_auth_apply(r->curl);
}

int cli_remote_call(cli_remote *r, const char *method, const char *path, json_t *in, json_t **out,
                    const char *what)
{
    char *payload = in ? json_dumps(in, JSON_COMPACT) : NULL;
    if (in && !payload) {
        fprintf(stderr, "tidings: %s: out of memory\n", what);
        return EXIT_RUNTIME;
    }
    int code =
        cli_remote_call_text(r, method, path, payload, payload ? strlen(payload) : 0, out, what);
    free(payload);
    return code;
}

/* The request; a 404 is answered quietly (EXIT_NOTFOUND, nothing printed) with quiet_404. */
static int call(cli_remote *r, const char *method, const char *path, const char *payload,
                size_t len, json_t **out, const char *what, bool quiet_404)
{
    char url[8192];
    prepare(r, method, path, url, sizeof(url));
    body b;
    td_buf_init(&b);
    struct curl_slist *hdrs = NULL;
    if (payload) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, hdrs);
    }
    curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, &b);
    CURLcode cc = curl_easy_perform(r->curl);
    long status = 0;
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
    int code = EXIT_OK;
    if (cc != CURLE_OK) {
        code = transport_error(r, cc, what);
    } else if (status == 404 && quiet_404) {
        code = EXIT_NOTFOUND;
    } else if (status < 200 || status > 299) {
        code = answer_error(status, &b, what);
    } else if (out) {
        json_error_t je;
        *out = NULL;
        /* A value with a NUL byte is a JSON string with \u0000 (the wire format of schemas
         * starts with one): allowed, and kept by its length. */
        if (b.len && !(*out = json_loadb((const char *)b.p, b.len, JSON_ALLOW_NUL, &je))) {
            fprintf(stderr, "tidings: %s: the broker's answer is not JSON: %s\n", what, je.text);
            code = EXIT_RUNTIME;
        }
    }
    curl_slist_free_all(hdrs);
    td_buf_free(&b);
    return code;
}

int cli_remote_call_text(cli_remote *r, const char *method, const char *path, const char *payload,
                         size_t len, json_t **out, const char *what)
{
    return call(r, method, path, payload, len, out, what, false);
}

int cli_remote_raw(cli_remote *r, const char *method, const char *path, const char *content_type,
                   const char *payload, size_t len, long *status, char **answer,
                   size_t *answer_len, const char *what)
{
    char url[8192];
    prepare(r, method, path, url, sizeof(url));
    body b;
    td_buf_init(&b);
    struct curl_slist *hdrs = NULL;
    char ct[256], accept[256];
    snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
    snprintf(accept, sizeof(accept), "Accept: %s", content_type);
    hdrs = curl_slist_append(hdrs, accept);
    if (payload) {
        hdrs = curl_slist_append(hdrs, ct);
        curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, &b);
    CURLcode cc = curl_easy_perform(r->curl);
    *status = 0;
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdrs);
    if (cc != CURLE_OK) {
        td_buf_free(&b);
        return transport_error(r, cc, what);
    }
    if (!body_add(&b, "", 0)) { /* an empty answer is "" too */
        td_buf_free(&b);
        fprintf(stderr, "tidings: %s: out of memory\n", what);
        return EXIT_RUNTIME;
    }
    *answer = (char *)b.p;
    *answer_len = b.len;
    return EXIT_OK;
}

int cli_remote_get_if_exists(cli_remote *r, const char *path, json_t **out, bool *exists,
                             const char *what)
{
    int code = call(r, "GET", path, NULL, 0, out, what, true);
    *exists = code == EXIT_OK;
    return code == EXIT_NOTFOUND ? EXIT_OK : code;
}

/* ---------------------------------------------------------------------------------------------
 * Streams
 */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct stream_ctx {
    cli_remote *r;
    cli_stream_fn fn;
    void *arg;
    long status;
    bool stopped;
    body err; /* the body of an error answer */
} stream_ctx;

static size_t on_stream(char *p, size_t size, size_t nmemb, void *arg)
{
    stream_ctx *s = arg;
    size_t n = size * nmemb;
    if (!s->status)
        curl_easy_getinfo(s->r->curl, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status != 200)
        return body_add(&s->err, p, n) ? n : 0;
    if (interrupted || !s->fn(s->arg, p, n)) {
        s->stopped = true;
        return 0;
    }
    return n;
}

/* Called at least once a second while the stream is idle: stops it on SIGINT or SIGTERM. */
static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    stream_ctx *s = arg;
    if (interrupted)
        s->stopped = true;
    return interrupted;
}

int cli_remote_stream(cli_remote *r, const char *path, const char *last_event_id, cli_stream_fn fn,
                      void *arg, const char *what, long *status)
{
    static bool handlers;
    if (!handlers) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        handlers = true;
    }
    char url[8192];
    prepare(r, "GET", path, url, sizeof(url));
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: text/event-stream");
    char idh[8300];
    if (last_event_id && *last_event_id) {
        snprintf(idh, sizeof(idh), "Last-Event-ID: %s", last_event_id);
        hdrs = curl_slist_append(hdrs, idh);
    }
    stream_ctx s = {.r = r, .fn = fn, .arg = arg};
    curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(r->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(r->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(r->curl, CURLOPT_XFERINFODATA, &s);
    /* The broker sends a heartbeat every 15 s: a minute without a byte is a dead connection. */
    curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_TIME, 60L);
    CURLcode cc = curl_easy_perform(r->curl);
    if (!s.status)
        curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &s.status);
    *status = s.status;
    int code = EXIT_OK;
    if (s.stopped || interrupted)
        code = EXIT_OK;
    else if (s.status && s.status != 200)
        code = answer_error(s.status, &s.err, what);
    else if (cc != CURLE_OK) {
        if (!r->err[0])
            snprintf(r->err, sizeof(r->err), "%s", curl_easy_strerror(cc));
        code = EXIT_UNREACHABLE;
    }
    curl_slist_free_all(hdrs);
    td_buf_free(&s.err);
    return code;
}

const char *cli_remote_why(const cli_remote *r)
{
    return r->err[0] ? r->err : "no answer";
}

bool cli_interrupted(void)
{
    return interrupted != 0;
}

void cli_json_print(const json_t *j)
{
    /* Reals as the broker prints them: 0.1, not jansson's 0.10000000000000001. */
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text) {
        fwrite(text, 1, td_json_shorten_reals(text, strlen(text)), stdout);
        free(text);
    }
    fputc('\n', stdout);
}
