/*
 * test_registry.c: the schema registry (broker/registry.h) on an engine, through its REST
 * mapping (td_schema_request, the code the HTTP listener runs) and its lookups
 * (registry_int.h): IDs across subjects, versions, soft and permanent deletes with Confluent's
 * errors, references, modes, compatibility orchestration, replay after a reopen, and bounds.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "../test.h"
#include "broker/broker.h"
#include "broker/engine_int.h"
#include "broker/registry.h"
#include "broker/registry_int.h"
#include "broker/state.h"

static td_engine *open_reg(const char *dir, int64_t max_schemas, int64_t max_bytes)
{
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    o.schema_registry_max_schemas = max_schemas;
    o.schema_registry_max_schema_bytes = max_bytes;
    td_engine *e;
    ASSERT_OK(td_engine_open(dir, &o, &e));
    return e;
}

/* One REST request; the answer (static buffer) and its status. */
static char answer[1 << 16];
static int req(td_engine *e, const char *method, const char *path, const char *body)
{
    int status = 0;
    char *resp = NULL;
    size_t len = 0;
    ASSERT_OK(td_schema_request(e, method, path, body, body ? strlen(body) : 0, &status, &resp,
                                &len));
    ASSERT(resp != NULL);
    ASSERT_EQ(strlen(resp), len);
    snprintf(answer, sizeof(answer), "%s", resp);
    free(resp);
    return status;
}

#define EXPECT(e, method, path, body, status, text)                                                \
    do {                                                                                           \
        ASSERT_EQ(req(e, method, path, body), status);                                             \
        ASSERT_STR_EQ(answer, text);                                                               \
    } while (0)

/* Versions of unrelated types follow one another in these tests: no compatibility check. */
#define NO_COMPAT(e)                                                                               \
    EXPECT(e, "PUT", "/config", "{\"compatibility\":\"NONE\"}", 200,                          \
           "{\"compatibility\":\"NONE\"}")

#define JS(type) "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"type\\\":\\\"" type "\\\"}\"}"

static void test_ids_and_versions(void)
{
    char *dir = test_tmpdir("reg-ids");
    td_engine *e = open_reg(dir, 0, 0);
    EXPECT(e, "GET", "/", NULL, 200, "{}");
    EXPECT(e, "GET", "/subjects", NULL, 200, "[]");
    /* Versions of unrelated types follow one another: no compatibility check. */
    EXPECT(e, "PUT", "/config", "{\"compatibility\":\"NONE\"}", 200,
           "{\"compatibility\":\"NONE\"}");
    EXPECT(e, "POST", "/subjects/t-value/versions", JS("object"), 200, "{\"id\":1}");
    /* The same schema again: the same id, no new version. */
    EXPECT(e, "POST", "/subjects/t-value/versions", JS("object"), 200, "{\"id\":1}");
    /* Under another subject: the same id (the identity is type, text and references). */
    EXPECT(e, "POST", "/subjects/u-value/versions", JS("object"), 200, "{\"id\":1}");
    EXPECT(e, "POST", "/subjects/t-value/versions", JS("string"), 200, "{\"id\":2}");
    EXPECT(e, "GET", "/subjects/t-value/versions", NULL, 200, "[1,2]");
    EXPECT(e, "GET", "/subjects", NULL, 200, "[\"t-value\",\"u-value\"]");
    EXPECT(e, "GET", "/subjects?subjectPrefix=u", NULL, 200, "[\"u-value\"]");
    EXPECT(e, "GET", "/subjects/t-value/versions/latest", NULL, 200,
           "{\"subject\":\"t-value\",\"version\":2,\"id\":2,\"schemaType\":\"JSON\","
           "\"schema\":\"{\\\"type\\\":\\\"string\\\"}\"}");
    EXPECT(e, "GET", "/subjects/t-value/versions/1/schema", NULL, 200, "{\"type\":\"object\"}");
    EXPECT(e, "GET", "/schemas/ids/1", NULL, 200,
           "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"type\\\":\\\"object\\\"}\"}");
    EXPECT(e, "GET", "/schemas/ids/1/subjects", NULL, 200, "[\"t-value\",\"u-value\"]");
    EXPECT(e, "GET", "/schemas/ids/1/versions", NULL, 200,
           "[{\"subject\":\"t-value\",\"version\":1},{\"subject\":\"u-value\",\"version\":1}]");
    EXPECT(e, "GET", "/schemas/ids/7", NULL, 404,
           "{\"error_code\":40403,\"message\":\"Schema 7 not found\"}");
    EXPECT(e, "POST", "/subjects/u-value", JS("object"), 200,
           "{\"subject\":\"u-value\",\"version\":1,\"id\":1,\"schemaType\":\"JSON\","
           "\"schema\":\"{\\\"type\\\":\\\"object\\\"}\"}");
    EXPECT(e, "POST", "/subjects/u-value", JS("string"), 404,
           "{\"error_code\":40403,\"message\":\"Schema not found\"}");
    EXPECT(e, "POST", "/subjects/nope", JS("string"), 404,
           "{\"error_code\":40401,\"message\":\"Subject 'nope' not found.\"}");
    EXPECT(e, "GET", "/subjects/t-value/versions/x", NULL, 422,
           "{\"error_code\":42202,\"message\":\"The specified version 'x' is not a valid version "
           "id. Allowed values are between [1, 2^31-1] and the string \\\"latest\\\"\"}");
    EXPECT(e, "GET", "/subjects/t-value/versions/9", NULL, 404,
           "{\"error_code\":40402,\"message\":\"Version 9 not found.\"}");
    EXPECT(e, "GET", "/nothing/here", NULL, 404,
           "{\"error_code\":404,\"message\":\"HTTP 404 Not Found\"}");
    EXPECT(e, "GET", "/schemas/types", NULL, 200, "[\"JSON\",\"PROTOBUF\",\"AVRO\"]");
    /* A subject of any characters, percent-encoded in the path. */
    EXPECT(e, "POST", "/subjects/a%2Fb%20c%3F/versions", JS("object"), 200, "{\"id\":1}");
    EXPECT(e, "GET", "/schemas/ids/1/subjects", NULL, 200,
           "[\"a/b c?\",\"t-value\",\"u-value\"]");
    EXPECT(e, "GET", "/subjects/a%2/versions", NULL, 404,
           "{\"error_code\":404,\"message\":\"HTTP 404 Not Found\"}");
    /* An invalid schema, an unknown type, an empty body. */
    ASSERT_EQ(req(e, "POST", "/subjects/t-value/versions",
                  "{\"schemaType\":\"JSON\",\"schema\":\"{not json\"}"),
              422);
    ASSERT_CONTAINS(answer, "\"error_code\":42201");
    ASSERT_EQ(req(e, "POST", "/subjects/t-value/versions",
                  "{\"schemaType\":\"XML\",\"schema\":\"{}\"}"),
              422);
    ASSERT_CONTAINS(answer, "\"error_code\":42201");
    ASSERT_EQ(req(e, "POST", "/subjects/t-value/versions", "[1"), 400);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_deletes(void)
{
    char *dir = test_tmpdir("reg-del");
    td_engine *e = open_reg(dir, 0, 0);
    NO_COMPAT(e);
    EXPECT(e, "POST", "/subjects/s/versions", JS("object"), 200, "{\"id\":1}");
    EXPECT(e, "POST", "/subjects/s/versions", JS("string"), 200, "{\"id\":2}");
    EXPECT(e, "DELETE", "/subjects/s/versions/1?permanent=true", NULL, 404,
           "{\"error_code\":40407,\"message\":\"Subject 's' Version 1 was not deleted first "
           "before being permanently deleted\"}");
    EXPECT(e, "DELETE", "/subjects/s/versions/1", NULL, 200, "1");
    EXPECT(e, "DELETE", "/subjects/s/versions/1", NULL, 404,
           "{\"error_code\":40406,\"message\":\"Subject 's' Version 1 was soft deleted.Set "
           "permanent=true to delete permanently\"}");
    EXPECT(e, "GET", "/subjects/s/versions", NULL, 200, "[2]");
    EXPECT(e, "GET", "/subjects/s/versions?deleted=true", NULL, 200, "[1,2]");
    EXPECT(e, "GET", "/subjects/s/versions/1", NULL, 404,
           "{\"error_code\":40402,\"message\":\"Version 1 not found.\"}");
    ASSERT_EQ(req(e, "GET", "/subjects/s/versions/1?deleted=true", NULL), 200);
    EXPECT(e, "DELETE", "/subjects/s?permanent=true", NULL, 404,
           "{\"error_code\":40405,\"message\":\"Subject 's' was not deleted first before being "
           "permanently deleted\"}");
    EXPECT(e, "DELETE", "/subjects/s", NULL, 200, "[2]");
    EXPECT(e, "DELETE", "/subjects/s", NULL, 404,
           "{\"error_code\":40404,\"message\":\"Subject 's' was soft deleted.Set "
           "permanent=true to delete permanently\"}");
    EXPECT(e, "GET", "/subjects", NULL, 200, "[]");
    EXPECT(e, "GET", "/subjects?deleted=true", NULL, 200, "[\"s\"]");
    EXPECT(e, "GET", "/subjects/s/versions", NULL, 404,
           "{\"error_code\":40401,\"message\":\"Subject 's' not found.\"}");
    /* Versions go on after a soft-deleted subject is registered again, as Confluent. */
    EXPECT(e, "POST", "/subjects/s/versions", JS("object"), 200, "{\"id\":1}");
    EXPECT(e, "GET", "/subjects/s/versions", NULL, 200, "[3]");
    EXPECT(e, "DELETE", "/subjects/s", NULL, 200, "[3]");
    EXPECT(e, "DELETE", "/subjects/s?permanent=true", NULL, 200, "[1,2,3]");
    EXPECT(e, "GET", "/subjects?deleted=true", NULL, 200, "[]");
    /* Ids are never reused: the ids of the deleted schemas are gone, new ones come after. */
    EXPECT(e, "GET", "/schemas/ids/2", NULL, 404,
           "{\"error_code\":40403,\"message\":\"Schema 2 not found\"}");
    EXPECT(e, "POST", "/subjects/s/versions", JS("number"), 200, "{\"id\":3}");
    EXPECT(e, "GET", "/subjects/s/versions", NULL, 200, "[1]");
    EXPECT(e, "DELETE", "/subjects/nope", NULL, 404,
           "{\"error_code\":40401,\"message\":\"Subject 'nope' not found.\"}");
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_references(void)
{
    char *dir = test_tmpdir("reg-refs");
    td_engine *e = open_reg(dir, 0, 0);
    NO_COMPAT(e);
    EXPECT(e, "POST", "/subjects/base/versions", JS("object"), 200, "{\"id\":1}");
    const char *with_ref =
        "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"$ref\\\":\\\"base.json\\\"}\","
        "\"references\":[{\"name\":\"base.json\",\"subject\":\"base\",\"version\":1}]}";
    EXPECT(e, "POST", "/subjects/top/versions", with_ref, 200, "{\"id\":2}");
    EXPECT(e, "GET", "/subjects/top/versions/1", NULL, 200,
           "{\"subject\":\"top\",\"version\":1,\"id\":2,\"schemaType\":\"JSON\","
           "\"references\":[{\"name\":\"base.json\",\"subject\":\"base\",\"version\":1}],"
           "\"schema\":\"{\\\"$ref\\\":\\\"base.json\\\"}\"}");
    EXPECT(e, "GET", "/subjects/base/versions/1/referencedby", NULL, 200, "[2]");
    /* The same text without the reference does not resolve its $ref. */
    ASSERT_EQ(req(e, "POST", "/subjects/other/versions",
                  "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"$ref\\\":\\\"base.json\\\"}\"}"),
              422);
    ASSERT_CONTAINS(answer, "\"error_code\":42201");
    EXPECT(e, "DELETE", "/subjects/base/versions/1", NULL, 422,
           "{\"error_code\":42206,\"message\":\"One or more references exist to the schema "
           "{magic=1,keytype=SCHEMA,subject=base,version=1}.\"}");
    ASSERT_EQ(req(e, "DELETE", "/subjects/base", NULL), 422);
    ASSERT_EQ(req(e, "POST", "/subjects/bad/versions",
                  "{\"schemaType\":\"JSON\",\"schema\":\"{}\",\"references\":[{\"name\":\"x\","
                  "\"subject\":\"missing\",\"version\":1}]}"),
              422);
    ASSERT_CONTAINS(answer, "\"error_code\":42201");
    /* Once the referring schema is gone for good, the reference is free. */
    EXPECT(e, "DELETE", "/subjects/top", NULL, 200, "[1]");
    ASSERT_EQ(req(e, "DELETE", "/subjects/base", NULL), 422); /* a soft delete keeps it */
    EXPECT(e, "DELETE", "/subjects/top?permanent=true", NULL, 200, "[1]");
    EXPECT(e, "DELETE", "/subjects/base", NULL, 200, "[1]");
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_config_and_modes(void)
{
    char *dir = test_tmpdir("reg-cfg");
    td_engine *e = open_reg(dir, 0, 0);
    EXPECT(e, "GET", "/config", NULL, 200, "{\"compatibilityLevel\":\"BACKWARD\"}");
    EXPECT(e, "PUT", "/config", "{\"compatibility\":\"full\"}", 200,
           "{\"compatibility\":\"FULL\"}");
    EXPECT(e, "PUT", "/config", "{\"compatibility\":\"SIDEWAYS\"}", 422,
           "{\"error_code\":42203,\"message\":\"Invalid compatibility level. Valid values are "
           "none, backward, forward, full, backward_transitive, forward_transitive, and "
           "full_transitive\"}");
    EXPECT(e, "GET", "/config/s", NULL, 404,
           "{\"error_code\":40408,\"message\":\"Subject 's' does not have subject-level "
           "compatibility configured\"}");
    EXPECT(e, "GET", "/config/s?defaultToGlobal=true", NULL, 200,
           "{\"compatibilityLevel\":\"FULL\"}");
    EXPECT(e, "PUT", "/config/s", "{\"compatibility\":\"NONE\"}", 200,
           "{\"compatibility\":\"NONE\"}");
    EXPECT(e, "GET", "/config/s", NULL, 200, "{\"compatibilityLevel\":\"NONE\"}");
    EXPECT(e, "DELETE", "/config/s", NULL, 200, "{\"compatibilityLevel\":\"NONE\"}");
    EXPECT(e, "GET", "/config/s?defaultToGlobal=true", NULL, 200,
           "{\"compatibilityLevel\":\"FULL\"}");
    EXPECT(e, "DELETE", "/config", NULL, 200, "{\"compatibilityLevel\":\"FULL\"}");
    EXPECT(e, "GET", "/config", NULL, 200, "{\"compatibilityLevel\":\"BACKWARD\"}");
    /* Modes. */
    EXPECT(e, "GET", "/mode", NULL, 200, "{\"mode\":\"READWRITE\"}");
    EXPECT(e, "PUT", "/mode", "{\"mode\":\"FROZEN\"}", 422,
           "{\"error_code\":42204,\"message\":\"Invalid mode. Valid values are READWRITE, "
           "READONLY, IMPORT\"}");
    EXPECT(e, "PUT", "/mode/ro", "{\"mode\":\"READONLY\"}", 200, "{\"mode\":\"READONLY\"}");
    EXPECT(e, "POST", "/subjects/ro/versions", JS("object"), 422,
           "{\"error_code\":42205,\"message\":\"Subject ro is in read-only mode\"}");
    EXPECT(e, "POST", "/subjects/rw/versions", JS("object"), 200, "{\"id\":1}");
    EXPECT(e, "PUT", "/mode", "{\"mode\":\"IMPORT\"}", 422,
           "{\"error_code\":42205,\"message\":\"Cannot import since found existing subjects\"}");
    EXPECT(e, "PUT", "/mode/imp", "{\"mode\":\"IMPORT\"}", 200, "{\"mode\":\"IMPORT\"}");
    /* IMPORT: the given id and version are kept; the counter moves past the id. */
    EXPECT(e, "POST", "/subjects/imp/versions",
           "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"type\\\":\\\"array\\\"}\",\"id\":100,"
           "\"version\":5}",
           200, "{\"id\":100}");
    EXPECT(e, "GET", "/subjects/imp/versions", NULL, 200, "[5]");
    EXPECT(e, "POST", "/subjects/imp/versions",
           "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"type\\\":\\\"null\\\"}\",\"id\":1}", 422,
           "{\"error_code\":42207,\"message\":\"Overwrite new schema with id 1 is not "
           "permitted.\"}");
    EXPECT(e, "POST", "/subjects/rw/versions",
           "{\"schemaType\":\"JSON\",\"schema\":\"{}\",\"id\":7}", 422,
           "{\"error_code\":42205,\"message\":\"Subject rw is not in import mode\"}");
    EXPECT(e, "DELETE", "/mode/imp", NULL, 200, "{\"mode\":\"IMPORT\"}");
    EXPECT(e, "GET", "/mode/imp", NULL, 404,
           "{\"error_code\":40409,\"message\":\"Subject 'imp' does not have subject-level mode "
           "configured\"}");
    EXPECT(e, "PUT", "/config/rw", "{\"compatibility\":\"NONE\"}", 200,
           "{\"compatibility\":\"NONE\"}");
    EXPECT(e, "POST", "/subjects/rw/versions", JS("boolean"), 200, "{\"id\":101}");
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_compat_orchestration(void)
{
    char *dir = test_tmpdir("reg-compat");
    td_engine *e = open_reg(dir, 0, 0);
    /* BACKWARD compares with the latest only; BACKWARD_TRANSITIVE with every version. */
    EXPECT(e, "PUT", "/config/c", "{\"compatibility\":\"NONE\"}", 200,
           "{\"compatibility\":\"NONE\"}");
    EXPECT(e, "POST", "/subjects/c/versions", JS("string"), 200, "{\"id\":1}");
    EXPECT(e, "POST", "/subjects/c/versions", JS("object"), 200, "{\"id\":2}");
    EXPECT(e, "PUT", "/config/c", "{\"compatibility\":\"BACKWARD\"}", 200,
           "{\"compatibility\":\"BACKWARD\"}");
    EXPECT(e, "POST", "/compatibility/subjects/c/versions/latest", JS("object"), 200,
           "{\"is_compatible\":true}");
    EXPECT(e, "POST", "/compatibility/subjects/c/versions/1", JS("object"), 200,
           "{\"is_compatible\":false}");
    ASSERT_EQ(req(e, "POST", "/compatibility/subjects/c/versions/1?verbose=true", JS("object")),
              200);
    ASSERT_CONTAINS(answer, "{oldSchemaVersion: 1}");
    ASSERT_CONTAINS(answer, "{compatibility: 'BACKWARD'}");
    EXPECT(e, "PUT", "/config/c", "{\"compatibility\":\"BACKWARD_TRANSITIVE\"}", 200,
           "{\"compatibility\":\"BACKWARD_TRANSITIVE\"}");
    ASSERT_EQ(req(e, "POST", "/subjects/c/versions", JS("object")), 200); /* registered */
    ASSERT_EQ(req(e, "POST", "/subjects/c/versions",
                  "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"type\\\":\\\"object\\\","
                  "\\\"title\\\":\\\"x\\\"}\"}"),
              409);
    ASSERT_CONTAINS(answer, "\"error_code\":409");
    ASSERT_CONTAINS(answer, "{oldSchemaVersion: 1}");
    /* A soft-deleted version is not compared. */
    EXPECT(e, "DELETE", "/subjects/c/versions/1", NULL, 200, "1");
    ASSERT_EQ(req(e, "POST", "/subjects/c/versions",
                  "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"type\\\":\\\"object\\\","
                  "\\\"title\\\":\\\"x\\\"}\"}"),
              200);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_replay(void)
{
    char *dir = test_tmpdir("reg-replay");
    td_engine *e = open_reg(dir, 0, 0);
    NO_COMPAT(e);
    EXPECT(e, "POST", "/subjects/a/versions", JS("object"), 200, "{\"id\":1}");
    EXPECT(e, "POST", "/subjects/a/versions", JS("string"), 200, "{\"id\":2}");
    EXPECT(e, "POST", "/subjects/b/versions", JS("string"), 200, "{\"id\":2}");
    EXPECT(e, "POST", "/subjects/z/versions", JS("number"), 200, "{\"id\":3}");
    EXPECT(e, "DELETE", "/subjects/a/versions/1", NULL, 200, "1");
    EXPECT(e, "DELETE", "/subjects/z", NULL, 200, "[1]");
    EXPECT(e, "DELETE", "/subjects/z?permanent=true", NULL, 200, "[1]");
    EXPECT(e, "PUT", "/config", "{\"compatibility\":\"FORWARD\"}", 200,
           "{\"compatibility\":\"FORWARD\"}");
    EXPECT(e, "PUT", "/config/b", "{\"compatibility\":\"NONE\"}", 200,
           "{\"compatibility\":\"NONE\"}");
    EXPECT(e, "PUT", "/mode/a", "{\"mode\":\"READONLY\"}", 200, "{\"mode\":\"READONLY\"}");
    /* A schema above 32767 bytes (the text has an int32 length in its record). */
    size_t big = 40000;
    char *body = malloc(big + 100);
    int n = snprintf(body, big + 100, "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"title\\\":\\\"");
    memset(body + n, 'x', big);
    snprintf(body + n + big, 100, "\\\"}\"}");
    EXPECT(e, "POST", "/subjects/big/versions", body, 200, "{\"id\":4}");
    free(body);
    td_engine_close(e);

    e = open_reg(dir, 0, 0);
    EXPECT(e, "GET", "/subjects", NULL, 200, "[\"a\",\"b\",\"big\"]");
    EXPECT(e, "GET", "/subjects/a/versions?deleted=true", NULL, 200, "[1,2]");
    EXPECT(e, "GET", "/subjects/a/versions", NULL, 200, "[2]");
    EXPECT(e, "GET", "/schemas/ids/2/subjects", NULL, 200, "[\"a\",\"b\"]");
    EXPECT(e, "GET", "/config", NULL, 200, "{\"compatibilityLevel\":\"FORWARD\"}");
    EXPECT(e, "GET", "/config/b", NULL, 200, "{\"compatibilityLevel\":\"NONE\"}");
    EXPECT(e, "GET", "/mode/a", NULL, 200, "{\"mode\":\"READONLY\"}");
    ASSERT_EQ(req(e, "GET", "/subjects/big/versions/1/schema", NULL), 200);
    ASSERT_EQ(strlen(answer), big + 12);
    /* Id 3 was held only by z, deleted for good: the counter still knows it. */
    EXPECT(e, "POST", "/subjects/c/versions", JS("null"), 200, "{\"id\":5}");
    /* The parsed schema of an id, held across its deletion. */
    void *ref;
    const schema *s = registry_get_schema(e, 5, &ref);
    ASSERT(s != NULL);
    ASSERT(registry_subject_has_id(e, "c", 5));
    ASSERT(!registry_subject_has_id(e, "a", 5));
    int32_t id = 0;
    void *ref2;
    ASSERT(registry_latest_schema(e, "a", &id, &ref2) != NULL);
    ASSERT_EQ(id, 2);
    registry_put(ref2);
    EXPECT(e, "DELETE", "/subjects/c", NULL, 200, "[1]");
    EXPECT(e, "DELETE", "/subjects/c?permanent=true", NULL, 200, "[1]");
    ASSERT_STR_EQ(schema_canonical(s), "{\"type\":\"null\"}"); /* still alive */
    registry_put(ref);
    ASSERT(registry_get_schema(e, 5, &ref) == NULL);
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_bounds(void)
{
    char *dir = test_tmpdir("reg-bounds");
    td_engine *e = open_reg(dir, 3, 1024);
    NO_COMPAT(e);
    EXPECT(e, "POST", "/subjects/a/versions", JS("object"), 200, "{\"id\":1}");
    EXPECT(e, "POST", "/subjects/b/versions", JS("string"), 200, "{\"id\":2}");
    EXPECT(e, "POST", "/subjects/c/versions", JS("number"), 200, "{\"id\":3}");
    ASSERT_EQ(req(e, "POST", "/subjects/d/versions", JS("null")), 422);
    ASSERT_CONTAINS(answer, "schema.registry.max.schemas");
    /* A soft delete keeps the version; a permanent one frees its place. */
    EXPECT(e, "DELETE", "/subjects/c", NULL, 200, "[1]");
    ASSERT_EQ(req(e, "POST", "/subjects/d/versions", JS("null")), 422);
    EXPECT(e, "DELETE", "/subjects/c?permanent=true", NULL, 200, "[1]");
    EXPECT(e, "POST", "/subjects/d/versions", JS("null"), 200, "{\"id\":4}");
    /* A schema above schema.registry.max.schema.bytes: 413. */
    char body[3000];
    int n = snprintf(body, sizeof(body), "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"title\\\":\\\"");
    memset(body + n, 'y', 2000);
    snprintf(body + n + 2000, sizeof(body) - (size_t)n - 2000, "\\\"}\"}");
    ASSERT_EQ(req(e, "POST", "/subjects/a/versions", body), 413);
    ASSERT_CONTAINS(answer, "\"error_code\":42201");
    /* Subject names: at most 1024 bytes, no control characters. */
    char path[1200];
    n = snprintf(path, sizeof(path), "/subjects/");
    memset(path + n, 's', 1025);
    snprintf(path + n + 1025, sizeof(path) - (size_t)n - 1025, "/versions");
    ASSERT_EQ(req(e, "POST", path, JS("object")), 422);
    ASSERT_CONTAINS(answer, "{\"error_code\":42208,\"message\":\"The specified subject 'sss");
    EXPECT(e, "POST", "/subjects/a%0Ab/versions", JS("object"), 422,
           "{\"error_code\":42208,\"message\":\"The specified subject 'a\\nb' is not a "
           "valid.\"}");
    /* A body of too many JSON values is refused before it is parsed. */
    size_t nb = 20000;
    char *deep = malloc(nb + 1);
    for (size_t i = 0; i < nb; i++)
        deep[i] = i % 2 ? ',' : '1';
    deep[0] = '[';
    deep[nb] = '\0';
    ASSERT_EQ(req(e, "POST", "/subjects/a/versions", deep), 400);
    free(deep);
    /* Subjects known only by a level count against the bound too (a, b and d hold 3). */
    ASSERT_EQ(req(e, "PUT", "/config/fresh", "{\"compatibility\":\"NONE\"}"), 422);
    ASSERT_CONTAINS(answer, "schema.registry.max.schemas");
    EXPECT(e, "PUT", "/config/a", "{\"compatibility\":\"NONE\"}", 200,
           "{\"compatibility\":\"NONE\"}");
    /* References count in a schema's bytes. */
    char big_ref[2000];
    n = snprintf(big_ref, sizeof(big_ref),
                 "{\"schemaType\":\"JSON\",\"schema\":\"{}\",\"references\":[{\"name\":\"");
    memset(big_ref + n, 'r', 1100);
    snprintf(big_ref + n + 1100, sizeof(big_ref) - (size_t)n - 1100,
             "\",\"subject\":\"a\",\"version\":1}]}");
    ASSERT_EQ(req(e, "POST", "/subjects/a/versions", big_ref), 422);
    ASSERT_CONTAINS(answer, "with its references");
    td_engine_close(e);
    test_rmrf(dir);
}

static void test_pct_decode(void)
{
    char *s = registry_pct_decode("a%2Fb+c", 7, false);
    ASSERT_STR_EQ(s, "a/b+c");
    free(s);
    s = registry_pct_decode("a%2Fb+c", 7, true);
    ASSERT_STR_EQ(s, "a/b c");
    free(s);
    /* Truncated escapes at every cut, a bad digit, an escaped NUL. */
    const char *bad[] = {"%", "%2", "x%", "%zz", "%00", "a%0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ASSERT(registry_pct_decode(bad[i], strlen(bad[i]), false) == NULL);
    s = registry_pct_decode("%41%4a", 4, false); /* cut inside: "%41%" */
    ASSERT(s == NULL);
    s = registry_pct_decode("", 0, false);
    ASSERT_STR_EQ(s, "");
    free(s);
}

/* Registrations from several threads: each distinct schema gets one id, each subject gapless
 * versions, and lookups run meanwhile (TSan checks the locking). */
static td_engine *conc_e;
static void *conc_main(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < 20; i++) {
        char body[200], path[64];
        snprintf(body, sizeof(body),
                 "{\"schemaType\":\"JSON\",\"schema\":\"{\\\"title\\\":\\\"s%d\\\"}\"}", i);
        snprintf(path, sizeof(path), "/subjects/t%d/versions", t);
        int status;
        char *resp;
        size_t len;
        ASSERT_OK(td_schema_request(conc_e, "POST", path, body, strlen(body), &status, &resp,
                                    &len));
        ASSERT_EQ(status, 200);
        free(resp);
        void *ref;
        if (registry_get_schema(conc_e, 1, &ref))
            registry_put(ref);
    }
    return NULL;
}

static void test_concurrent(void)
{
    char *dir = test_tmpdir("reg-conc");
    conc_e = open_reg(dir, 0, 0);
    NO_COMPAT(conc_e);
    EXPECT(conc_e, "PUT", "/config", "{\"compatibility\":\"NONE\"}", 200,
           "{\"compatibility\":\"NONE\"}");
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, conc_main, (void *)(intptr_t)i);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int t = 0; t < 4; t++) {
        char path[64];
        snprintf(path, sizeof(path), "/subjects/t%d/versions", t);
        ASSERT_EQ(req(conc_e, "GET", path, NULL), 200);
        ASSERT_STR_EQ(answer, "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]");
    }
    /* 20 distinct schemas over all subjects: ids 1 to 20. */
    ASSERT_EQ(req(conc_e, "GET", "/schemas/ids/20/subjects", NULL), 200);
    ASSERT_STR_EQ(answer, "[\"t0\",\"t1\",\"t2\",\"t3\"]");
    ASSERT_EQ(req(conc_e, "GET", "/schemas/ids/21", NULL), 404);
    td_engine_close(conc_e);
    test_rmrf(dir);
}

/* A record the replay does not understand (an unknown kind) refuses the start, as the other
 * state topics' replays do: skipping it could lose a version or the id counter. */
static void test_unknown_record_refuses_start(void)
{
    char *dir = test_tmpdir("reg-unknown");
    td_engine *e = open_reg(dir, 0, 0);
    EXPECT(e, "POST", "/subjects/a/versions", JS("object"), 200, "{\"id\":1}");
    uint8_t key[] = {0, 9}, value[] = {0, 0};
    td_event ev = {.key = key, .key_len = 2, .value = value, .value_len = 2};
    int64_t end;
    ASSERT_OK(state_append(e, STATE_SCHEMAS, 0, &ev, 1, &end));
    ASSERT_OK(state_wait(e, STATE_SCHEMAS, 0, end));
    td_engine_close(e);
    td_options o;
    td_options_init(&o);
    o.no_background = 1;
    ASSERT_EQ(td_engine_open(dir, &o, &e), TD_ECORRUPT);
    ASSERT_CONTAINS(td_last_error(), "__schemas partition 0 offset 2");
    test_rmrf(dir);
}

/* registry_rest_async: a change answers through the callback once durable; a read at once. */
static atomic_int async_status;
static void async_done(void *arg, int status, char *resp, size_t len)
{
    (void)arg;
    ASSERT_EQ(strlen(resp), len);
    ASSERT_STR_EQ(resp, "{\"id\":1}");
    free(resp);
    atomic_store(&async_status, status);
}

static void test_rest_async(void)
{
    char *dir = test_tmpdir("reg-async");
    td_engine *e = open_reg(dir, 0, 0);
    int status;
    char *resp;
    size_t len;
    const char *body = JS("object");
    ASSERT_EQ(registry_rest_async(e, NULL, "POST", "/subjects/a/versions", "", body,
                                  strlen(body), &status, &resp, &len, async_done, NULL),
              1);
    for (int i = 0; i < 2000 && atomic_load(&async_status) == 0; i++)
        usleep(1000);
    ASSERT_EQ(atomic_load(&async_status), 200);
    ASSERT_EQ(registry_rest_async(e, NULL, "GET", "/subjects", "", NULL, 0, &status, &resp,
                                  &len, async_done, NULL),
              0);
    ASSERT_EQ(status, 200);
    ASSERT_STR_EQ(resp, "[\"a\"]");
    free(resp);
    td_engine_close(e);
    test_rmrf(dir);
}

TEST_MAIN(TEST(test_ids_and_versions), TEST(test_deletes), TEST(test_references),
          TEST(test_config_and_modes), TEST(test_compat_orchestration), TEST(test_replay),
          TEST(test_bounds), TEST(test_pct_decode), TEST(test_concurrent),
          TEST(test_unknown_record_refuses_start), TEST(test_rest_async))
