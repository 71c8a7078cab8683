/* Unit tests for the Avro schema type (src/schema/avro*.c) through schema.h: parse errors with
 * their JSON pointers (and every truncation of a schema's text), canonical forms as
 * Confluent's canonicalString() prints them, a compatibility matrix of schema resolution with
 * Confluent's messages, binary datum validation (good, truncated at every byte, trailing
 * bytes, bad union and enum indexes, bad UTF-8, varints, blocks), and JSON round trips. */
#include <avro.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"
#include "test.h"

static schema *parse_deps(const char *text, const schema_dep *deps, size_t n)
{
    schema *s = NULL;
    schema_error err;
    int rc = schema_parse(SCHEMA_AVRO, text, strlen(text), deps, n, &s, &err);
    if (rc)
        fprintf(stderr, "parse failed: %s at '%s': %s\n", text, err.path, err.message);
    ASSERT_EQ(rc, 0);
    return s;
}

static schema *parse(const char *text)
{
    return parse_deps(text, NULL, 0);
}

static void parse_fails(const char *text, const char *path, const char *words)
{
    schema *s = NULL;
    schema_error err;
    memset(&err, 0, sizeof(err));
    ASSERT_EQ(schema_parse(SCHEMA_AVRO, text, strlen(text), NULL, 0, &s, &err), -1);
    ASSERT(s == NULL);
    if (path)
        ASSERT_STR_EQ(err.path, path);
    if (words)
        ASSERT_CONTAINS(err.message, words);
}

static void canon_is(const char *text, const char *want)
{
    schema *s = parse(text);
    ASSERT_STR_EQ(schema_canonical(s), want);
    /* The canonical form is a fixpoint. */
    schema *again = parse(schema_canonical(s));
    ASSERT_STR_EQ(schema_canonical(again), want);
    schema_free(again);
    schema_free(s);
}

static void test_parse_errors(void)
{
    parse_fails("", "", "invalid JSON");
    parse_fails("{\"type\":", "", "invalid JSON");
    parse_fails("42", "", "must be a string");
    parse_fails("\"nope\"", "", "not a defined name");
    parse_fails("{}", "", "no type");
    parse_fails("{\"type\":\"record\",\"fields\":[]}", "", "name");
    parse_fails("{\"type\":\"record\",\"name\":\"R\"}", "", "no fields");
    parse_fails("{\"type\":\"record\",\"name\":\"1R\",\"fields\":[]}", "/name", "invalid name");
    parse_fails("{\"type\":\"record\",\"name\":\"a.b.\",\"fields\":[]}", "/name", "invalid name");
    /* As Java, names may hold non-ASCII letters. */
    schema_free(parse("{\"type\":\"enum\",\"name\":\"Gr\xc3\xb6\xc3\x9f"
                      "e\",\"symbols\":[\"\xc3\xa9t\xc3\xa9\"]}"));
    /* As Java 1.11, a namespace is not checked. */
    schema_free(parse("{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"com.my-co\","
                      "\"fields\":[]}"));
    parse_fails("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\"}]}", "/fields/0",
                "no field type");
    parse_fails("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"
                "{\"name\":\"a\",\"type\":\"int\"}]}",
                "/fields/1", "duplicate field");
    parse_fails("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":"
                "{\"type\":\"array\",\"items\":\"Nope\"}}]}",
                "/fields/0/type/items", "not a defined name");
    parse_fails("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\","
                "\"default\":\"x\"}]}",
                "/fields/0/default", "invalid default");
    parse_fails("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\","
                "\"default\":4294967296}]}",
                "/fields/0/default", "invalid default");
    /* A union's default is a value of its first branch. */
    parse_fails("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":"
                "[\"null\",\"int\"],\"default\":1}]}",
                "/fields/0/default", "invalid default");
    parse_fails("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\","
                "\"order\":\"up\"}]}",
                "/fields/0/order", "order");
    parse_fails("[\"int\",[\"string\"]]", "/1", "union");
    parse_fails("[\"int\",\"string\",\"int\"]", "/2", "duplicate in union: int");
    parse_fails("[{\"type\":\"array\",\"items\":\"int\"},{\"type\":\"array\",\"items\":\"long\"}]",
                "/1", "duplicate");
    parse_fails("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"A\"]}", "/symbols/1",
                "duplicate enum symbol");
    parse_fails("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"1\"]}", "/symbols/1",
                "symbol");
    parse_fails("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"],\"default\":\"B\"}",
                "/default", "not one of the symbols");
    parse_fails("{\"type\":\"fixed\",\"name\":\"F\",\"size\":-1}", "/size", "size");
    parse_fails("{\"type\":\"fixed\",\"name\":\"F\"}", "/size", "size");
    parse_fails("{\"type\":\"fixed\",\"name\":\"int\",\"size\":1}", "/name", "primitives");
    parse_fails("[{\"type\":\"fixed\",\"name\":\"F\",\"size\":1},"
                "{\"type\":\"fixed\",\"name\":\"F\",\"size\":2}]",
                "/1/name", "redefine");
    parse_fails("{\"type\":\"array\"}", "", "items");
    parse_fails("{\"type\":\"map\"}", "", "values");
    parse_fails("{\"type\":\"record\",\"name\":\"R\",\"aliases\":[1],\"fields\":[]}", "/aliases/0",
                "alias");
    /* Nesting past the bound is refused, not recursed into. */
    char deep[4096] = "";
    for (int i = 0; i < SCHEMA_MAX_DEPTH + 1; i++)
        strcat(deep, "{\"type\":\"array\",\"items\":");
    strcat(deep, "\"int\"");
    for (int i = 0; i < SCHEMA_MAX_DEPTH + 1; i++)
        strcat(deep, "}");
    parse_fails(deep, NULL, "deeper");
}

/* Every proper prefix of a valid schema, and every one-byte corruption, fails cleanly or
 * parses (a corruption may make another valid schema); none crashes or leaks. */
static void test_truncated_and_garbled(void)
{
    const char *text =
        "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"n\",\"fields\":[{\"name\":\"a\","
        "\"type\":[\"null\",{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\",\"Y\"]}],"
        "\"default\":null},{\"name\":\"b\",\"type\":{\"type\":\"map\",\"values\":\"E\"}}]}";
    size_t n = strlen(text);
    for (size_t k = 0; k < n; k++) {
        schema *s = NULL;
        schema_error err;
        ASSERT_EQ(schema_parse(SCHEMA_AVRO, text, k, NULL, 0, &s, &err), -1);
    }
    char *g = strdup(text);
    static const char junk[] = {'"', '{', '}', '[', ']', ',', ':', 'x', '1', 0, '\\'};
    for (size_t k = 0; k < n; k++)
        for (size_t j = 0; j < sizeof(junk); j++) {
            memcpy(g, text, n);
            g[k] = junk[j];
            schema *s = NULL;
            schema_error err;
            if (schema_parse(SCHEMA_AVRO, g, n, NULL, 0, &s, &err) == 0)
                schema_free(s);
        }
    free(g);
}

static void test_canonical(void)
{
    canon_is("\"int\"", "\"int\"");
    canon_is("{\"type\":\"string\"}", "\"string\"");
    canon_is("{ \"type\" : \"long\", \"logicalType\" : \"timestamp-millis\" }",
             "{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}");
    canon_is("{\"type\":\"bytes\",\"scale\":2,\"logicalType\":\"decimal\",\"precision\":9}",
             "{\"type\":\"bytes\",\"scale\":2,\"logicalType\":\"decimal\",\"precision\":9}");
    /* Attributes in Java's order, whatever the text's; unknown properties kept. */
    canon_is("{\"fields\":[{\"type\":\"int\",\"name\":\"a\",\"default\":1,\"doc\":\"d\","
             "\"order\":\"descending\",\"aliases\":[\"x\"],\"extra\":true}],"
             "\"aliases\":[\"n.Old\",\"o.Q\"],\"doc\":\"rd\",\"namespace\":\"n\",\"name\":\"R\","
             "\"type\":\"record\",\"custom\":{\"k\":[1,2.5]}}",
             "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"n\",\"doc\":\"rd\",\"fields\":"
             "[{\"name\":\"a\",\"type\":\"int\",\"doc\":\"d\",\"default\":1,\"order\":"
             "\"descending\",\"aliases\":[\"x\"],\"extra\":true}],\"custom\":{\"k\":[1,2.5]},"
             "\"aliases\":[\"Old\",\"o.Q\"]}");
    /* A dotted name carries its namespace; a nested type inherits it and prints none; a
     * reference is the short name in the same namespace, the full one elsewhere. */
    canon_is("{\"type\":\"record\",\"name\":\"a.b.R\",\"fields\":["
             "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\"],"
             "\"default\":\"X\"}},"
             "{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"namespace\":\"c\","
             "\"size\":2}},"
             "{\"name\":\"g\",\"type\":[\"null\",\"E\",\"c.F\",\"R\"]},"
             "{\"name\":\"h\",\"type\":{\"type\":\"record\",\"name\":\"N\",\"namespace\":\"\","
             "\"fields\":[{\"name\":\"x\",\"type\":\"a.b.E\"}]}}]}",
             "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a.b\",\"fields\":["
             "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\"],"
             "\"default\":\"X\"}},"
             "{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"namespace\":\"c\","
             "\"size\":2}},"
             "{\"name\":\"g\",\"type\":[\"null\",\"E\",\"c.F\",\"R\"]},"
             "{\"name\":\"h\",\"type\":{\"type\":\"record\",\"name\":\"N\",\"namespace\":\"\","
             "\"fields\":[{\"name\":\"x\",\"type\":\"a.b.E\"}]}}]}");
    canon_is("{\"type\":\"array\",\"items\":{\"type\":\"map\",\"values\":\"double\"},\"p\":\"q\"}",
             "{\"type\":\"array\",\"items\":{\"type\":\"map\",\"values\":\"double\"},\"p\":\"q\"}");
    /* Defaults as Jackson prints them: reals as Java's Double.toString. */
    canon_is("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"d\",\"type\":\"double\","
             "\"default\":1e10},{\"name\":\"e\",\"type\":\"double\",\"default\":0.5},"
             "{\"name\":\"f\",\"type\":\"float\",\"default\":1.0},"
             "{\"name\":\"s\",\"type\":\"string\",\"default\":\"\\u00e9\\n\\\"/\"}]}",
             "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"d\",\"type\":\"double\","
             "\"default\":1.0E10},{\"name\":\"e\",\"type\":\"double\",\"default\":0.5},"
             "{\"name\":\"f\",\"type\":\"float\",\"default\":1.0},"
             "{\"name\":\"s\",\"type\":\"string\",\"default\":\"\xc3\xa9\\n\\\"/\"}]}");
    /* As Java, a namespace or doc that is not a string counts as absent. */
    canon_is("{\"type\":\"record\",\"name\":\"R\",\"namespace\":null,\"doc\":5,\"fields\":[]}",
             "{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}");
    canon_is("{\"type\":\"error\",\"name\":\"X\",\"fields\":[]}",
             "{\"type\":\"error\",\"name\":\"X\",\"fields\":[]}");
    schema *s = parse("{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"n\",\"fields\":[]}");
    ASSERT_STR_EQ(schema_record_name(s), "n.R");
    schema_free(s);
    s = parse("\"string\"");
    ASSERT(schema_record_name(s) == NULL);
    schema_free(s);
}

/* A reference's named type is used by name, and printed by name (Confluent prints the
 * referenced schemas' types as known). */
static void test_references(void)
{
    const char *addr = "{\"type\":\"record\",\"name\":\"Address\",\"namespace\":\"com.x\","
                       "\"fields\":[{\"name\":\"zip\",\"type\":\"string\"}]}";
    schema_dep dep = {"com.x.Address", addr, strlen(addr)};
    schema *s = parse_deps("{\"type\":\"record\",\"name\":\"User\",\"namespace\":\"com.x\","
                           "\"fields\":[{\"name\":\"home\",\"type\":\"Address\"}]}",
                           &dep, 1);
    ASSERT_STR_EQ(schema_canonical(s),
                  "{\"type\":\"record\",\"name\":\"User\",\"namespace\":\"com.x\",\"fields\":"
                  "[{\"name\":\"home\",\"type\":\"Address\"}]}");
    uint8_t *bin = NULL;
    size_t n = 0;
    schema_error err;
    const char *datum = "{\"home\":{\"zip\":\"123\"}}";
    ASSERT_EQ(schema_avro_from_json(s, datum, strlen(datum), &bin, &n, &err), 0);
    ASSERT_EQ(schema_validate(s, bin, n, &err), 0);
    free(bin);
    schema_free(s);
    schema *bad = NULL;
    const char *t = "{\"type\":\"record\",\"name\":\"U\",\"fields\":[{\"name\":\"h\",\"type\":"
                    "\"com.x.Nope\"}]}";
    ASSERT_EQ(schema_parse(SCHEMA_AVRO, t, strlen(t), &dep, 1, &bad, &err), -1);
    ASSERT_STR_EQ(err.path, "/fields/0/type");
    schema_dep broken = {"b", "{", 1};
    ASSERT_EQ(schema_parse(SCHEMA_AVRO, "\"int\"", 5, &broken, 1, &bad, &err), -1);
    ASSERT_CONTAINS(err.message, "reference 'b'");
}

/* reader can read writer? and the messages. */
static void compat(const char *reader, const char *writer, bool want, const char *msg)
{
    schema *r = parse(reader), *w = parse(writer);
    schema_msgs m = {0};
    bool got = schema_can_read(r, w, &m);
    if (got != want)
        fprintf(stderr, "reader %s\nwriter %s\nmsgs %s\n", reader, writer, m.text ? m.text : "");
    ASSERT_EQ(got, want);
    if (want)
        ASSERT_EQ(m.count, 0);
    else
        ASSERT_GE(m.count, 1);
    if (msg)
        ASSERT_CONTAINS(m.text, msg);
    schema_msgs_free(&m);
    schema_free(r);
    schema_free(w);
}

#define REC(fields) "{\"type\":\"record\",\"name\":\"R\",\"fields\":[" fields "]}"

static void test_compat_records(void)
{
    const char *v1 = REC("{\"name\":\"a\",\"type\":\"int\"}");
    const char *v2_def = REC("{\"name\":\"a\",\"type\":\"int\"},"
                             "{\"name\":\"f\",\"type\":\"string\",\"default\":\"x\"}");
    const char *v2_nodef = REC("{\"name\":\"a\",\"type\":\"int\"},"
                               "{\"name\":\"f\",\"type\":\"string\"}");
    compat(v2_def, v1, true, NULL);
    compat(v2_nodef, v1, false,
           "{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'f' at path "
           "'/fields/1' in the new schema has no default value and is missing in the old "
           "schema', additionalInfo:'f'}");
    /* As Java: a missing enum field whose enum has a default is compared with the record. */
    compat(REC("{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"e\",\"type\":{\"type\":\"enum\","
               "\"name\":\"E\",\"symbols\":[\"X\"],\"default\":\"X\"}}"),
           v1, false,
           "{errorType:'TYPE_MISMATCH', description:'The type (path '/fields/1/type') of a field "
           "in the new schema does not match with the old schema', additionalInfo:'reader type: "
           "ENUM not compatible with writer type: RECORD'}");
    /* A removed field: the reader ignores it. */
    compat(v1, v2_nodef, true, NULL);
    /* Renamed: through the reader's alias only. */
    compat(REC("{\"name\":\"b\",\"type\":\"int\",\"aliases\":[\"a\"]}"), v1, true, NULL);
    compat(REC("{\"name\":\"b\",\"type\":\"int\"}"), v1, false, "READER_FIELD_MISSING_DEFAULT");
    /* Record names, and aliases of the reader's record. */
    compat("{\"type\":\"record\",\"name\":\"S\",\"fields\":[]}",
           "{\"type\":\"record\",\"name\":\"n.R\",\"fields\":[]}", false,
           "{errorType:'NAME_MISMATCH', description:'The name of the schema has changed (path "
           "'/name')', additionalInfo:'expected: n.R'}");
    compat("{\"type\":\"record\",\"name\":\"S\",\"aliases\":[\"n.R\"],\"fields\":[]}",
           "{\"type\":\"record\",\"name\":\"n.R\",\"fields\":[]}", true, NULL);
    /* Nested records report the nested path. */
    compat(REC("{\"name\":\"n\",\"type\":{\"type\":\"record\",\"name\":\"N\",\"fields\":["
               "{\"name\":\"x\",\"type\":\"int\"}]}}"),
           REC("{\"name\":\"n\",\"type\":{\"type\":\"record\",\"name\":\"N\",\"fields\":["
               "{\"name\":\"x\",\"type\":\"string\"}]}}"),
           false,
           "{errorType:'TYPE_MISMATCH', description:'The type (path '/fields/0/type/fields/0/"
           "type') of a field in the new schema does not match with the old schema', "
           "additionalInfo:'reader type: INT not compatible with writer type: STRING'}");
    /* Two incompatibilities, two messages. */
    schema *r =
        parse(REC("{\"name\":\"a\",\"type\":\"string\"},{\"name\":\"z\",\"type\":\"int\"}"));
    schema *w = parse(v1);
    schema_msgs m = {0};
    ASSERT(!schema_can_read(r, w, &m));
    ASSERT_EQ(m.count, 2);
    schema_msgs_free(&m);
    schema_free(r);
    schema_free(w);
    /* Recursive records terminate. */
    const char *list = "{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"v\",\"type\":"
                       "\"int\"},{\"name\":\"next\",\"type\":[\"null\",\"L\"]}]}";
    const char *list2 = "{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"v\",\"type\":"
                        "\"long\"},{\"name\":\"next\",\"type\":[\"null\",\"L\"]}]}";
    compat(list2, list, true, NULL);
    compat(list, list2, false, "reader type: INT not compatible with writer type: LONG");
}

static void test_compat_primitives(void)
{
    static const char *const prim[] = {"null",  "boolean", "int",   "long",
                                       "float", "double",  "bytes", "string"};
    /* promote[w][r]: a writer's type read as the reader's. */
    static const bool promote[8][8] = {
        {1, 0, 0, 0, 0, 0, 0, 0}, {0, 1, 0, 0, 0, 0, 0, 0}, {0, 0, 1, 1, 1, 1, 0, 0},
        {0, 0, 0, 1, 1, 1, 0, 0}, {0, 0, 0, 0, 1, 1, 0, 0}, {0, 0, 0, 0, 0, 1, 0, 0},
        {0, 0, 0, 0, 0, 0, 1, 1}, {0, 0, 0, 0, 0, 0, 1, 1},
    };
    for (int w = 0; w < 8; w++)
        for (int r = 0; r < 8; r++) {
            char rs[32], ws[32];
            snprintf(rs, sizeof(rs), "\"%s\"", prim[r]);
            snprintf(ws, sizeof(ws), "\"%s\"", prim[w]);
            compat(rs, ws, promote[w][r], promote[w][r] ? NULL : "TYPE_MISMATCH");
        }
    compat("\"long\"", "\"double\"", false,
           "{errorType:'TYPE_MISMATCH', description:'The type (path '/') of a field in the new "
           "schema does not match with the old schema', additionalInfo:'reader type: LONG not "
           "compatible with writer type: DOUBLE'}");
}

static void test_compat_unions_enums_fixed(void)
{
    /* Union branch added (reader), removed (reader lacks the writer's). */
    compat("[\"null\",\"int\",\"string\"]", "[\"null\",\"int\"]", true, NULL);
    compat("[\"null\",\"int\"]", "[\"null\",\"int\",\"string\"]", false,
           "{errorType:'MISSING_UNION_BRANCH', description:'The new schema is missing a type "
           "inside a union field at path '/2' in the old schema', additionalInfo:'reader union "
           "lacking writer type: STRING'}");
    /* Non-union writer to union reader, with promotion; union writer to non-union reader. */
    compat("[\"null\",\"long\"]", "\"int\"", true, NULL);
    compat("[\"null\",\"string\"]", "\"int\"", false, "MISSING_UNION_BRANCH");
    compat("\"long\"", "[\"int\",\"long\"]", true, NULL);
    compat("\"long\"", "[\"null\",\"long\"]", false,
           "description:'The type (path '/0') of a field");
    const char *e2 = "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}";
    const char *e3 = "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\",\"D\",\"C\"]}";
    const char *e2d =
        "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"],\"default\":\"A\"}";
    compat(e3, e2, true, NULL);
    compat(e2, e3, false,
           "{errorType:'MISSING_ENUM_SYMBOLS', description:'The new schema is missing enum "
           "symbols '[C, D]' at path '/symbols' in the old schema', additionalInfo:'[C, D]'}");
    compat(e2d, e3, true, NULL);
    compat("{\"type\":\"enum\",\"name\":\"F\",\"symbols\":[\"A\",\"B\"]}", e2, false,
           "NAME_MISMATCH");
    /* As Java, a different name does not hide the other differences: two messages. */
    schema *ef = parse("{\"type\":\"enum\",\"name\":\"F\",\"symbols\":[\"A\"]}");
    schema *ee = parse(e2);
    schema_msgs m = {0};
    ASSERT(!schema_can_read(ef, ee, &m));
    ASSERT_EQ(m.count, 2);
    ASSERT_CONTAINS(m.text, "additionalInfo:'[B]'");
    schema_msgs_free(&m);
    schema_free(ef);
    schema_free(ee);
    const char *f4 = "{\"type\":\"fixed\",\"name\":\"F\",\"size\":4}";
    compat(f4, f4, true, NULL);
    compat("{\"type\":\"fixed\",\"name\":\"F\",\"size\":8}", f4, false,
           "{errorType:'FIXED_SIZE_MISMATCH', description:'The size of FIXED type field at path "
           "'/size' in the new schema does not match with the old schema', "
           "additionalInfo:'expected: 4, found: 8'}");
    compat("{\"type\":\"fixed\",\"name\":\"G\",\"size\":4}", f4, false, "NAME_MISMATCH");
    compat("{\"type\":\"array\",\"items\":\"long\"}", "{\"type\":\"array\",\"items\":\"int\"}",
           true, NULL);
    compat("{\"type\":\"array\",\"items\":\"int\"}", "{\"type\":\"array\",\"items\":\"long\"}",
           false, "path '/items'");
    compat("{\"type\":\"map\",\"values\":\"bytes\"}", "{\"type\":\"map\",\"values\":\"string\"}",
           true, NULL);
    compat("{\"type\":\"map\",\"values\":\"int\"}", "{\"type\":\"map\",\"values\":\"string\"}",
           false, "path '/values'");
    compat("{\"type\":\"map\",\"values\":\"int\"}", "{\"type\":\"array\",\"items\":\"int\"}", false,
           "reader type: MAP not compatible with writer type: ARRAY");
    /* Named references resolve as the types they name. */
    compat(REC("{\"name\":\"e\",\"type\":"
               "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]}"
               "},{\"name\":\"g\",\"type\":\"E\"}"),
           REC("{\"name\":\"e\",\"type\":"
               "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\","
               "\"B\"]}},{\"name\":\"g\",\"type\":\"E\"}"),
           false, "path '/fields/1/type/symbols'");
    /* Different schema types. */
    schema *a = parse("\"int\"");
    schema *j = NULL;
    schema_error err;
    if (schema_parse(SCHEMA_JSON, "{}", 2, NULL, 0, &j, &err) == 0) {
        ASSERT(!schema_can_read(a, j, NULL));
        schema_free(j);
    }
    schema_free(a);
}

static const char *const PERSON =
    "{\"type\":\"record\",\"name\":\"P\",\"namespace\":\"t\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"long\"},"
    "{\"name\":\"name\",\"type\":\"string\"},"
    "{\"name\":\"ok\",\"type\":\"boolean\"},"
    "{\"name\":\"score\",\"type\":\"double\"},"
    "{\"name\":\"f\",\"type\":\"float\"},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
    "{\"name\":\"attrs\",\"type\":{\"type\":\"map\",\"values\":\"int\"}},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}},"
    "{\"name\":\"h\",\"type\":{\"type\":\"fixed\",\"name\":\"H\",\"size\":2}},"
    "{\"name\":\"b\",\"type\":\"bytes\"},"
    "{\"name\":\"opt\",\"type\":[\"null\",\"string\",\"P\"],\"default\":null},"
    "{\"name\":\"n\",\"type\":\"null\"}]}";

static const char *const PERSON_JSON =
    "{\"id\":-123456789012,\"name\":\"J\xc3\xa9r\xc3\xb4me\",\"ok\":true,\"score\":2.5,"
    "\"f\":0.1,\"tags\":[\"a\",\"bc\"],\"attrs\":{\"x\":1,\"y\":-2},\"e\":\"B\",\"h\":\"\\u0000"
    "\xc3\xbf\",\"b\":\"a\\u0001\",\"opt\":{\"t.P\":{\"id\":1,\"name\":\"\",\"ok\":false,"
    "\"score\":0.0,\"f\":1.0,\"tags\":[],\"attrs\":{},\"e\":\"A\",\"h\":\"ab\",\"b\":\"\","
    "\"opt\":null,\"n\":null}},\"n\":null}";

static void test_json_round_trip(void)
{
    schema *s = parse(PERSON);
    uint8_t *bin = NULL;
    size_t n = 0;
    schema_error err;
    ASSERT_EQ(schema_avro_from_json(s, PERSON_JSON, strlen(PERSON_JSON), &bin, &n, &err), 0);
    ASSERT_EQ(schema_validate(s, bin, n, &err), 0);
    ASSERT_EQ(schema_validate_json(s, PERSON_JSON, strlen(PERSON_JSON), &err), 0);
    char *json = NULL;
    ASSERT_EQ(schema_avro_to_json(s, bin, n, &json, &err), 0);
    ASSERT_STR_EQ(json, PERSON_JSON);
    free(json);
    free(bin);

    /* Plain values for unions where a branch fits; a missing field takes its default. */
    bin = NULL;
    n = 0;
    const char *plain = "{\"id\":1,\"name\":\"x\",\"ok\":true,\"score\":1,\"f\":2,\"tags\":[],"
                        "\"attrs\":{},\"e\":\"A\",\"h\":\"zz\",\"b\":\"\",\"n\":null}";
    ASSERT_EQ(schema_avro_from_json(s, plain, strlen(plain), &bin, &n, &err), 0);
    ASSERT_EQ(schema_avro_to_json(s, bin, n, &json, &err), 0);
    ASSERT_CONTAINS(json, "\"opt\":null");
    ASSERT_CONTAINS(json, "\"score\":1.0");
    free(json);
    free(bin);
    const char *plain2 = "{\"id\":1,\"name\":\"x\",\"ok\":true,\"score\":1,\"f\":2,\"tags\":[],"
                         "\"attrs\":{},\"e\":\"A\",\"h\":\"zz\",\"b\":\"\",\"n\":null,"
                         "\"opt\":\"plain\"}";
    bin = NULL;
    n = 0;
    ASSERT_EQ(schema_avro_from_json(s, plain2, strlen(plain2), &bin, &n, &err), 0);
    ASSERT_EQ(schema_avro_to_json(s, bin, n, &json, &err), 0);
    ASSERT_CONTAINS(json, "\"opt\":{\"string\":\"plain\"}");
    free(json);
    free(bin);

    /* Errors name the datum's path. */
    static const struct {
        const char *json, *path, *rule;
    } bad[] = {
        {"{\"id\":\"x\"}", "/id", "type"},
        {"{\"id\":1}", "/name", "required"},
        {"{\"id\":1,\"name\":\"x\",\"ok\":true,\"score\":1,\"f\":2,\"tags\":[1],\"attrs\":{},"
         "\"e\":\"A\",\"h\":\"zz\",\"b\":\"\",\"n\":null}",
         "/tags/0", "type"},
        {"{\"id\":1,\"name\":\"x\",\"ok\":true,\"score\":1,\"f\":2,\"tags\":[],\"attrs\":"
         "{\"k/1\":\"s\"},\"e\":\"A\",\"h\":\"zz\",\"b\":\"\",\"n\":null}",
         "/attrs/k~11", "type"},
        {"{\"id\":1,\"name\":\"x\",\"ok\":true,\"score\":1,\"f\":2,\"tags\":[],\"attrs\":{},"
         "\"e\":\"C\",\"h\":\"zz\",\"b\":\"\",\"n\":null}",
         "/e", "enum"},
        {"{\"id\":1,\"name\":\"x\",\"ok\":true,\"score\":1,\"f\":2,\"tags\":[],\"attrs\":{},"
         "\"e\":\"A\",\"h\":\"zzz\",\"b\":\"\",\"n\":null}",
         "/h", "size"},
        {"{\"id\":1,\"name\":\"x\",\"ok\":true,\"score\":1,\"f\":2,\"tags\":[],\"attrs\":{},"
         "\"e\":\"A\",\"h\":\"zz\",\"b\":\"\\u0100\",\"n\":null}",
         "/b", "type"},
        {"{\"id\":1,\"name\":\"x\",\"ok\":true,\"score\":1,\"f\":2,\"tags\":[],\"attrs\":{},"
         "\"e\":\"A\",\"h\":\"zz\",\"b\":\"\",\"n\":null,\"opt\":5}",
         "/opt", "union"},
        {"{\"id\":", "", "syntax"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        ASSERT_EQ(schema_validate_json(s, bad[i].json, strlen(bad[i].json), &err), -1);
        ASSERT_STR_EQ(err.path, bad[i].path);
        ASSERT_STR_EQ(err.rule, bad[i].rule);
    }
    schema_free(s);
}

/* Encodes a JSON datum with the schema (the test's fixture builder). */
static uint8_t *encode(schema *s, const char *json, size_t *n)
{
    uint8_t *bin = NULL;
    *n = 0;
    schema_error err;
    ASSERT_EQ(schema_avro_from_json(s, json, strlen(json), &bin, n, &err), 0);
    return bin;
}

static void test_validate_binary(void)
{
    schema *s = parse(PERSON);
    size_t n;
    uint8_t *bin = encode(s, PERSON_JSON, &n);
    schema_error err;
    ASSERT_EQ(schema_validate(s, bin, n, &err), 0);
    /* Truncated at every byte: refused, never read past. */
    for (size_t k = 0; k < n; k++) {
        uint8_t *cut = malloc(k ? k : 1);
        memcpy(cut, bin, k);
        ASSERT_EQ(schema_validate(s, cut, k, &err), -1);
        char *json = NULL;
        ASSERT_EQ(schema_avro_to_json(s, cut, k, &json, &err), -1);
        ASSERT(json == NULL);
        free(cut);
    }
    /* Trailing bytes. */
    uint8_t *more = malloc(n + 1);
    memcpy(more, bin, n);
    more[n] = 0;
    ASSERT_EQ(schema_validate(s, more, n + 1, &err), -1);
    ASSERT_STR_EQ(err.rule, "trailing");
    free(more);
    free(bin);
    schema_free(s);

    /* Union index out of range, negative; enum index out of range. */
    s = parse("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"u\",\"type\":"
              "[\"null\",\"int\"]},{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
              "\"symbols\":[\"A\",\"B\"]}}]}");
    uint8_t good[] = {0x02, 0x54, 0x02};
    ASSERT_EQ(schema_validate(s, good, sizeof(good), &err), 0);
    uint8_t u2[] = {0x04, 0x54, 0x02};
    ASSERT_EQ(schema_validate(s, u2, sizeof(u2), &err), -1);
    ASSERT_STR_EQ(err.rule, "union");
    ASSERT_STR_EQ(err.path, "/u");
    uint8_t uneg[] = {0x01, 0x02};
    ASSERT_EQ(schema_validate(s, uneg, sizeof(uneg), &err), -1);
    ASSERT_STR_EQ(err.rule, "union");
    uint8_t e2[] = {0x00, 0x04};
    ASSERT_EQ(schema_validate(s, e2, sizeof(e2), &err), -1);
    ASSERT_STR_EQ(err.rule, "enum");
    ASSERT_STR_EQ(err.path, "/e");
    schema_free(s);

    /* Strings: bad UTF-8 and a length past the end, a negative length. */
    s = parse("{\"type\":\"array\",\"items\":\"string\"}");
    uint8_t bad8[] = {0x02, 0x04, 'a', 0xc0, 0x00};
    ASSERT_EQ(schema_validate(s, bad8, sizeof(bad8), &err), -1);
    ASSERT_STR_EQ(err.rule, "utf8");
    ASSERT_STR_EQ(err.path, "/0");
    uint8_t sur[] = {0x02, 0x06, 0xed, 0xa0, 0x80, 0x00};
    ASSERT_EQ(schema_validate(s, sur, sizeof(sur), &err), -1);
    uint8_t longlen[] = {0x02, 0xfe, 0xff, 0xff, 0xff, 0x0f, 'a', 0x00};
    ASSERT_EQ(schema_validate(s, longlen, sizeof(longlen), &err), -1);
    ASSERT_STR_EQ(err.rule, "truncated");
    uint8_t neglen[] = {0x02, 0x01, 0x00};
    ASSERT_EQ(schema_validate(s, neglen, sizeof(neglen), &err), -1);
    /* Blocks: a negative count with its byte size; a count past what is left. */
    uint8_t negblk[] = {0x01, 0x04, 0x02, 'h', 0x00};
    ASSERT_EQ(schema_validate(s, negblk, sizeof(negblk), &err), 0);
    char *json = NULL;
    ASSERT_EQ(schema_avro_to_json(s, negblk, sizeof(negblk), &json, &err), 0);
    ASSERT_STR_EQ(json, "[\"h\"]");
    free(json);
    uint8_t badsize[] = {0x01, 0x06, 0x02, 'h', 0x00};
    ASSERT_EQ(schema_validate(s, badsize, sizeof(badsize), &err), -1);
    ASSERT_STR_EQ(err.rule, "length");
    uint8_t hugecount[] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00};
    ASSERT_EQ(schema_validate(s, hugecount, sizeof(hugecount), &err), -1);
    /* A varint longer than 10 bytes. */
    uint8_t longvar[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    ASSERT_EQ(schema_validate(s, longvar, sizeof(longvar), &err), -1);
    schema_free(s);

    /* An array of nulls with an enormous count is validated without looping over it. */
    s = parse("{\"type\":\"array\",\"items\":\"null\"}");
    uint8_t nulls[] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00};
    ASSERT_EQ(schema_validate(s, nulls, sizeof(nulls), &err), 0);
    ASSERT_EQ(schema_avro_to_json(s, nulls, sizeof(nulls), &json, &err), -1);
    schema_free(s);

    /* An int past 32 bits; a boolean byte other than 0 and 1. */
    s = parse("\"int\"");
    uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0x1f};
    ASSERT_EQ(schema_validate(s, big, sizeof(big), &err), -1);
    uint8_t maxint[] = {0xfe, 0xff, 0xff, 0xff, 0x0f};
    ASSERT_EQ(schema_validate(s, maxint, sizeof(maxint), &err), 0);
    ASSERT_EQ(schema_validate(s, NULL, 0, &err), -1);
    schema_free(s);
    s = parse("\"boolean\"");
    uint8_t two[] = {2};
    ASSERT_EQ(schema_validate(s, two, 1, &err), -1);
    schema_free(s);

    /* A recursive record nests no deeper than the bound. */
    s = parse("{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"next\",\"type\":"
              "[\"null\",\"L\"]}]}");
    uint8_t chain[200];
    memset(chain, 0x02, sizeof(chain));
    chain[sizeof(chain) - 1] = 0x00;
    ASSERT_EQ(schema_validate(s, chain, sizeof(chain), &err), -1);
    ASSERT_STR_EQ(err.rule, "depth");
    ASSERT_EQ(schema_validate(s, chain + sizeof(chain) - 10, 10, &err), 0);
    /* A union is no level of its own: a list of SCHEMA_MAX_DEPTH records is read. */
    ASSERT_EQ(schema_validate(s, chain + sizeof(chain) - SCHEMA_MAX_DEPTH, SCHEMA_MAX_DEPTH, &err),
              0);
    ASSERT_EQ(schema_validate(s, chain + sizeof(chain) - SCHEMA_MAX_DEPTH - 1, SCHEMA_MAX_DEPTH + 1,
                              &err),
              -1);
    /* The JSON encoder has the same bound: the JSON of the deepest list encodes back. */
    char *deepest = NULL;
    ASSERT_EQ(schema_avro_to_json(s, chain + sizeof(chain) - SCHEMA_MAX_DEPTH, SCHEMA_MAX_DEPTH,
                                  &deepest, &err),
              0);
    size_t dn = 0;
    uint8_t *dbin = encode(s, deepest, &dn);
    ASSERT_UEQ(dn, SCHEMA_MAX_DEPTH);
    ASSERT_MEM_EQ(dbin, chain + sizeof(chain) - SCHEMA_MAX_DEPTH, dn);
    free(dbin);
    char *deeper = malloc(strlen(deepest) + 32);
    sprintf(deeper, "{\"next\":{\"L\":%s}}", deepest);
    ASSERT_EQ(schema_validate_json(s, deeper, strlen(deeper), &err), -1);
    ASSERT_STR_EQ(err.rule, "depth");
    free(deeper);
    free(deepest);
    schema_free(s);
}

/* Against libavro, the C reference implementation: what our encoder writes from JSON, libavro
 * reads to its last byte and writes back byte for byte the same. */
static void libavro_agrees(const char *schema_text, const char *json)
{
    schema *s = parse(schema_text);
    size_t n;
    uint8_t *bin = encode(s, json, &n);
    avro_schema_t as;
    ASSERT_EQ(avro_schema_from_json_length(schema_text, strlen(schema_text), &as), 0);
    avro_value_iface_t *cls = avro_generic_class_from_schema(as);
    ASSERT(cls != NULL);
    avro_value_t v;
    ASSERT_EQ(avro_generic_value_new(cls, &v), 0);
    avro_reader_t r = avro_reader_memory((const char *)bin, (int64_t)n);
    ASSERT_EQ(avro_value_read(r, &v), 0);
    size_t size = 0;
    ASSERT_EQ(avro_value_sizeof(&v, &size), 0);
    ASSERT_UEQ(size, n);
    char *back = malloc(n + 16);
    avro_writer_t w = avro_writer_memory(back, (int64_t)n + 16);
    ASSERT_EQ(avro_value_write(w, &v), 0);
    ASSERT_UEQ((size_t)avro_writer_tell(w), n);
    ASSERT_MEM_EQ(back, bin, n);
    avro_writer_free(w);
    avro_reader_free(r);
    avro_value_decref(&v);
    avro_value_iface_decref(cls);
    avro_schema_decref(as);
    free(back);
    free(bin);
    schema_free(s);
}

static void test_libavro(void)
{
    libavro_agrees(PERSON, PERSON_JSON);
    libavro_agrees("{\"type\":\"array\",\"items\":[\"null\",\"long\",{\"type\":\"map\","
                   "\"values\":\"float\"}]}",
                   "[null,{\"long\":-1},{\"long\":9223372036854775807},{\"map\":{\"a\":1.5,"
                   "\"b\":-0.25}},{\"long\":-9223372036854775808}]");
    libavro_agrees("\"string\"", "\"\"");
    libavro_agrees("\"int\"", "-2147483648");
}

/* Large schemas parse, print and compare in about linear time (names, fields, symbols and
 * compared pairs are hashed): 100,000 fields, 100,000 symbols, a union of 5,000 records. */
static void test_large_schema(void)
{
    size_t cap = 16u << 20, n = 0;
    char *t = malloc(cap);
    n += (size_t)snprintf(t + n, cap - n, "{\"type\":\"record\",\"name\":\"Big\",\"fields\":[");
    for (int i = 0; i < 100000; i++)
        n += (size_t)snprintf(t + n, cap - n, "%s{\"name\":\"f%d\",\"type\":\"int\"}", i ? "," : "",
                              i);
    n += (size_t)snprintf(t + n, cap - n,
                          ",{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
                          "\"symbols\":[");
    for (int i = 0; i < 100000; i++)
        n += (size_t)snprintf(t + n, cap - n, "%s\"S%d\"", i ? "," : "", i);
    n += (size_t)snprintf(t + n, cap - n, "]}},{\"name\":\"u\",\"type\":[");
    for (int i = 0; i < 5000; i++)
        n += (size_t)snprintf(t + n, cap - n,
                              "%s{\"type\":\"record\",\"name\":\"R%d\",\"fields\":[]}",
                              i ? "," : "", i);
    n += (size_t)snprintf(t + n, cap - n, "]}]}");
    schema *a = parse(t), *b = parse(t);
    ASSERT_EQ(strlen(schema_canonical(a)), n);
    schema_msgs m = {0};
    ASSERT(schema_can_read(a, b, &m));
    ASSERT_EQ(m.count, 0);
    schema_free(a);
    schema_free(b);
    free(t);
}

TEST_MAIN(TEST(test_parse_errors), TEST(test_truncated_and_garbled), TEST(test_canonical),
          TEST(test_references), TEST(test_compat_records), TEST(test_compat_primitives),
          TEST(test_compat_unions_enums_fixed), TEST(test_json_round_trip),
          TEST(test_validate_binary), TEST(test_libavro), TEST(test_large_schema))
