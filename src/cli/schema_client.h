/*
 * schema_client.h: the tidings command as a client of the schema registry (docs/schemas.md),
 * for `tidings schema`, `produce --schema` and `consume --format json`. One code path builds
 * the registry's REST requests (Confluent's paths and JSON) for both modes: locally they go to
 * the engine through td_schema_request (include/tidings.h), remotely over HTTP to the broker's
 * URL followed by the registry's prefix (`/registry` by default). The answers are the same JSON
 * either way, so that one renderer serves both.
 */
#ifndef TD_CLI_SCHEMA_CLIENT_H
#define TD_CLI_SCHEMA_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli/remote.h"
#include "schema/schema.h"
#include "tidings.h"

/* The prefix of the registry's routes on the broker's HTTP listener by default (the setting
 * schema.registry.prefix); --registry-prefix or $TIDINGS_REGISTRY_PREFIX says another. */
#define CLI_REGISTRY_PREFIX "/registry"

/* A schema fetched and parsed once, by ID (consume) or by subject and version (produce). */
typedef struct cli_schema_entry {
    int32_t id;
    schema *s; /* NULL: the ID is not registered (or not readable): not asked again */
} cli_schema_entry;

typedef struct cli_registry {
    td_engine *e;       /* local mode */
    cli_remote *r;      /* remote mode */
    const char *prefix; /* remote mode: the registry's prefix, "" for the root */
    cli_schema_entry *cache;
    size_t ncache, capcache;
} cli_registry;

/* The prefix: the flag, else $TIDINGS_REGISTRY_PREFIX, else CLI_REGISTRY_PREFIX. A prefix must
 * be "" or start with '/'; a trailing '/' is dropped. NULL (after printing why) when invalid. */
const char *cli_registry_prefix(const char *flag, char *buf, size_t cap);

/* A string as one path segment of a request, percent-encoded; malloc'd (NULL: no memory). */
char *cli_registry_segment(const char *s);

/*
 * One request: method, path (after the prefix, percent-encoded, with its query) and body (JSON,
 * or NULL). EXIT_OK when the registry answered, whatever its status: *status and *answer (its
 * JSON, NULL for an empty or non-JSON body; the caller decrefs); else the exit code, printed.
 */
int cli_registry_call(cli_registry *g, const char *method, const char *path, const json_t *body,
                      long *status, json_t **answer, const char *what);

/* The same, with an error answer printed ("tidings: <what>: <the registry's message>") and
 * turned into its exit code (404: 3, 409: 1, 422: 2 or 1, 401 and 403: 6). EXIT_OK with *answer
 * on a 2xx answer. */
int cli_registry_ok(cli_registry *g, const char *method, const char *path, const json_t *body,
                    json_t **answer, const char *what);

/* An error answer (status and the answer of cli_registry_call) printed, and its exit code. */
int cli_registry_error(long status, const json_t *answer, const char *what);

/*
 * A registered schema, parsed with its references (fetched from the registry, transitively):
 * by subject and version (version -1: the latest) when subject is not NULL, else by id. EXIT_OK
 * with *out (schema_free) and *id_out, or the exit code after printing why.
 */
int cli_registry_fetch(cli_registry *g, const char *subject, int32_t version, int32_t id,
                       schema **out, int32_t *id_out, const char *what);

/* The schema of an ID, fetched once and kept: NULL (quietly) when the registry does not know
 * it, or when it cannot be parsed. Owned by g. */
const schema *cli_registry_by_id(cli_registry *g, int32_t id);

void cli_registry_free(cli_registry *g);

#endif /* TD_CLI_SCHEMA_CLIENT_H */
