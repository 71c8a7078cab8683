/*
 * cli.h: what the files of the tidings command share. The command uses only the public API
 * (include/tidings.h), like any application that embeds the engine.
 */
#ifndef TD_CLI_H
#define TD_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "tidings.h"

/* Exit codes that scripts can rely on (docs/cli.md). */
enum {
    EXIT_OK = 0,
    EXIT_RUNTIME = 1,     /* the operation failed */
    EXIT_USAGE = 2,       /* bad command line */
    EXIT_NOTFOUND = 3,    /* no such topic or partition */
    EXIT_DATADIR = 4,     /* data directory missing, locked by another process, or newer */
    EXIT_UNREACHABLE = 5, /* --server: no answer from the broker */
    EXIT_DENIED = 6,      /* --server: authentication failed (401) or permission denied (403) */
};

/* Credentials for --server mode (auth.c, docs/cli.md#credentials). cli_auth_take removes
 * --user, --token-file, --cacert and (except for `user`) --password-file and --password-stdin
 * from argv (main, before the command parses it); cli_auth_load reads the secrets once (an exit
 * code); cli_auth_apply sets them on a libcurl handle (a CURL *); cli_auth_user is --user (or
 * NULL); cli_auth_who names who the requests authenticate as, NULL for nobody. */
int cli_auth_take(int *argc, char **argv, const char *verb);
int cli_auth_load(void);
void cli_auth_apply(void *curl);
const char *cli_auth_user(void);
const char *cli_auth_who(void);

/* Prints "tidings: <what>: <detail>" on stderr and returns the exit code for rc. */
int cli_fail(const char *what, int rc);
/* Prints "tidings: <message>" and a hint to use --help; returns EXIT_USAGE. */
int cli_usage_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The data directory: --data, else $TIDINGS_DATA, else ./data. */
const char *cli_data_dir(const char *flag);
/* Opens the engine for a local command (background work off: the command is short). Without
 * create, only a data directory that exists: a command that only reads, or changes what must
 * already exist, says there is none instead of creating an empty one. EXIT_OK with *e open, or
 * prints why not (a locked directory with a hint to use --server) and returns the exit code. */
int cli_open(const char *data, bool create, td_engine **e);
/* cli_open with a command's own hints (NULL: cli_open's) after a missing data directory ("no
 * tidings data in DIR: <hint>") and a locked one ("(<hint>)"). */
int cli_open_hinted(const char *data, bool create, const char *missing_hint,
                    const char *locked_hint, td_engine **e);
/* Closes a local command's engine: a failed final sync (events appended may be lost) is printed
 * and turns EXIT_OK into EXIT_RUNTIME; another code is returned as it was. */
int cli_close(td_engine *e, int code);
/* Opens the engine and looks up a topic (and, when partition >= 0, checks that it has that
 * partition), printing the error. Returns EXIT_OK with *e open, or an exit code. */
int cli_open_topic(const char *data, const char *topic, int64_t partition, const char *what,
                   td_engine **e, td_topic_info *info);
/* Parses a whole decimal number; false on anything else. */
bool cli_parse_i64(const char *s, int64_t *out);
/* Milliseconds since the epoch from a number or a UTC time like 2026-11-24T21:00:00.123Z. */
bool cli_parse_time(const char *s, int64_t *ms);
/* Milliseconds since the epoch as 2026-11-24T21:00:00Z. */
void cli_format_time(int64_t ms, char *buf, size_t len);
/* An integer member of a JSON object (0 when absent). */
int64_t cli_json_int(const json_t *o, const char *key);

/* Base64 (RFC 4648, padded), malloc'd and NUL-terminated; NULL when out of memory or, decoding,
 * on anything that is not base64 (*len is the decoded length). */
char *cli_base64(const void *p, size_t n);
char *cli_unbase64(const char *s, size_t n, size_t *len);

/* Output (output.c). Bytes as `name` when UTF-8, as base64 in `b64_name` otherwise, null for
 * NULL. An event as the HTTP API shows it with ?values=string, after its topic; printed as its
 * value on a line (text) or as the object on a line (json). */
void cli_json_set_bytes(json_t *o, const char *name, const char *b64_name, const void *p, size_t n);
json_t *cli_event_json(const char *topic, const td_event *ev);
/* The event's headers as the API's JSON array of {"key", "value"} (or *_b64) objects. */
json_t *cli_headers_json(const td_event *ev);
void cli_print_event(const json_t *ev, bool json);
/* A progress bar, "[#####-----]  42%", for a fraction in [0, 1]. */
void cli_bar(char *buf, size_t len, double fraction);
/* Redraws the progress line on standard error (a terminal); final ends it with a newline. */
void cli_progress_line(bool final, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reading a topic's events (cmd_consume.c): from the end (nothing), the beginning, an offset
 * (with a partition on a topic of several) or a time; every partition (-1) or one; at most max
 * (-1: all), each partition up to the end it had when the call started. Locally (r NULL, on
 * `data`) or remotely; fn gets each event as the API shows it with ?values=string, after its
 * topic. `what` names the operation in errors. Returns an exit code. */
enum cli_start { CLI_START_END, CLI_START_BEGINNING, CLI_START_OFFSET, CLI_START_TIME };
typedef struct cli_read_opts {
    const char *data;
    td_engine *e; /* locally: an engine already open on data (the caller closes it), or NULL */
    enum cli_start start;
    int64_t start_value, partition, max;
} cli_read_opts;
typedef void (*cli_event_fn)(void *arg, const json_t *ev);
struct cli_remote;
int cli_read_events(struct cli_remote *r, const char *topic, const cli_read_opts *o,
                    const char *what, cli_event_fn fn, void *arg);
/* A string member of a JSON object, or "-". */
const char *cli_json_str(const json_t *o, const char *key);
/* A monotonic clock, in milliseconds. */
int64_t cli_mono_ms(void);

int cmd_topic(int argc, char **argv);
int cmd_produce(int argc, char **argv);
int cmd_consume(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_group(int argc, char **argv);
int cmd_queue(int argc, char **argv);
int cmd_dlq(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_quota(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_acl(int argc, char **argv);
int cmd_schema(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_cluster(int argc, char **argv);
int cmd_request(int argc, char **argv);

#endif /* TD_CLI_H */
