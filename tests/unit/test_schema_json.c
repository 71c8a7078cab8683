/* Unit tests for JSON Schema (schema/json_schema*.c): parse errors, the canonical form, each
 * keyword's validation (good and bad values, with the failing pointer and rule), "$ref"s and
 * their bounds, a pattern with catastrophic backtracking, and Confluent's compatibility rules. */
#include <jansson.h>
#include <pthread.h>
#include <string.h>

#include "schema/schema.h"
#include "test.h"

static schema *parse_deps(const char *text, const schema_dep *deps, size_t ndeps)
{
    schema *s = NULL;
    schema_error err = {0};
    if (schema_parse(SCHEMA_JSON, text, strlen(text), deps, ndeps, &s, &err))
        TEST_FAIL_("schema %s refused: %s: %s (%s)", text, err.path, err.message, err.rule);
    return s;
}

static schema *parse(const char *text)
{
    return parse_deps(text, NULL, 0);
}

static void refused(const char *text, const char *rule, const char *path)
{
    schema *s = NULL;
    schema_error err = {0};
    if (!schema_parse(SCHEMA_JSON, text, strlen(text), NULL, 0, &s, &err))
        TEST_FAIL_("schema %s accepted", text);
    ASSERT(s == NULL);
    ASSERT(err.message[0]);
    if (rule)
        ASSERT_STR_EQ(err.rule, rule);
    if (path)
        ASSERT_STR_EQ(err.path, path);
}

/* The value is valid against the schema. */
static void good(const schema *s, const char *json)
{
    schema_error err = {0};
    if (schema_validate_json(s, json, strlen(json), &err))
        TEST_FAIL_("%s refused: %s %s: %s", json, err.path, err.rule, err.message);
    if (schema_validate(s, (const uint8_t *)json, strlen(json), &err))
        TEST_FAIL_("%s refused as bytes", json);
}

/* The value is refused, at the path and by the rule given. */
static void bad(const schema *s, const char *json, const char *path, const char *rule)
{
    schema_error err = {0};
    if (!schema_validate_json(s, json, strlen(json), &err))
        TEST_FAIL_("%s accepted against %s", json, schema_canonical(s));
    if (strcmp(err.path, path) || strcmp(err.rule, rule))
        TEST_FAIL_("%s: refused at '%s' by '%s' (%s), not at '%s' by '%s'", json, err.path,
                   err.rule, err.message, path, rule);
    ASSERT(err.message[0]);
    /* The same through a parsed value. */
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    if (v) {
        schema_error e2 = {0};
        ASSERT_EQ(schema_json_validate_value(s, v, &e2), -1);
        ASSERT_STR_EQ(e2.path, path);
        json_decref(v);
    }
}

static void check(const char *schema_text, const char *const *goods, const char *const *bads)
{
    schema *s = parse(schema_text);
    for (size_t i = 0; goods[i]; i++)
        good(s, goods[i]);
    for (size_t i = 0; bads[i]; i += 3)
        bad(s, bads[i], bads[i + 1], bads[i + 2]);
    schema_free(s);
}

#define G(...) ((const char *const[]){__VA_ARGS__, NULL})
#define B(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_parse_errors(void)
{
    refused("", "syntax", "");
    refused("{\"type\": \"object\"", "syntax", "");
    refused("{\"type\": \"object\", \"properties\": {\"a\": {", "syntax", "");
    refused("{\"type\" \"object\"}", "syntax", "");
    refused("\x01\x02garbage", "syntax", "");
    refused("[1, 2]", "schema", "");
    refused("42", "schema", "");
    refused("\"string\"", "schema", "");
    refused("{\"type\": \"strin\"}", "type", "/type");
    refused("{\"type\": 7}", "type", "/type");
    refused("{\"properties\": {\"a\": {\"minLength\": -1}}}", "minLength",
            "/properties/a/minLength");
    refused("{\"properties\": {\"a/b\": {\"maxItems\": 1.5}}}", "maxItems",
            "/properties/a~1b/maxItems");
    refused("{\"pattern\": \"(unclosed\"}", "pattern", "/pattern");
    refused("{\"patternProperties\": {\"[\": {}}}", "patternProperties", "/patternProperties/[");
    refused("{\"multipleOf\": 0}", "multipleOf", NULL);
    refused("{\"minimum\": \"3\"}", "minimum", "/minimum");
    refused("{\"allOf\": []}", "allOf", "/allOf");
    refused("{\"anyOf\": [{}, 3]}", "schema", "/anyOf/1");
    refused("{\"enum\": 3}", "enum", "/enum");
    refused("{\"properties\": {\"a\": {\"$ref\": \"#/definitions/missing\"}}}", "$ref",
            "/properties/a/$ref");
    refused("{\"$ref\": \"other.json\"}", "$ref", "/$ref");
    refused("{\"required\": [\"a\"], \"properties\": {\"a\": {\"$ref\": \"#/required\"}}}",
            "schema", "");
    /* Nesting past the bound is refused, not recursed into. */
    char deep[2048] = "";
    for (int i = 0; i < 70; i++)
        strcat(deep, "{\"not\":");
    strcat(deep, "{}");
    for (int i = 0; i < 70; i++)
        strcat(deep, "}");
    refused(deep, "depth", NULL);
    /* A referenced schema that is not JSON. */
    schema_dep d = {"a.json", "{", 1};
    schema *s = NULL;
    schema_error err = {0};
    /* A "$ref" to something that is not a schema: the message names the "$ref". */
    const char *notschema = "{\"required\": [\"a\"], \"not\": {\"$ref\": \"#/required\"}}";
    ASSERT_EQ(schema_parse(SCHEMA_JSON, notschema, strlen(notschema), NULL, 0, &s, &err), -1);
    ASSERT_CONTAINS(err.message, "\"$ref\": \"#/required\"");
    ASSERT_EQ(schema_parse(SCHEMA_JSON, "{\"$ref\":\"a.json\"}", 17, &d, 1, &s, &err), -1);
    ASSERT_CONTAINS(err.message, "a.json");
    /* Booleans are schemas. */
    s = parse("true");
    good(s, "{\"anything\": [1]}");
    schema_free(s);
    s = parse("false");
    bad(s, "1", "", "false");
    schema_free(s);
    /* Every truncation of a valid schema is refused or parsed, never more. */
    const char *full = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\","
                       "\"pattern\":\"^x+$\"}},\"required\":[\"a\"]}";
    for (size_t n = 0; n < strlen(full); n++) {
        schema *t = NULL;
        ASSERT_EQ(schema_parse(SCHEMA_JSON, full, n, NULL, 0, &t, &err), -1);
        ASSERT(t == NULL);
    }
}

static void test_canonical(void)
{
    schema *s = parse("{ \"title\" : \"Order\",\n  \"type\": \"object\",  \"properties\": {\n"
                      "  \"z\": {\"type\": \"number\", \"maximum\": 0.1},\n"
                      "  \"a\": {\"type\": \"string\", \"x-unknown\": [1, 2]}\n}}");
    ASSERT_STR_EQ(schema_canonical(s),
                  "{\"title\":\"Order\",\"type\":\"object\",\"properties\":{\"z\":{\"type\":"
                  "\"number\",\"maximum\":0.1},\"a\":{\"type\":\"string\",\"x-unknown\":[1,2]}}}");
    ASSERT_STR_EQ(schema_record_name(s), "Order");
    ASSERT_EQ(schema_get_type(s), SCHEMA_JSON);
    schema_free(s);
    s = parse("{\"type\": \"string\"}");
    ASSERT(schema_record_name(s) == NULL);
    ASSERT_STR_EQ(schema_canonical(s), "{\"type\":\"string\"}");
    schema_free(s);
    s = parse(" true ");
    ASSERT_STR_EQ(schema_canonical(s), "true");
    schema_free(s);
    /* Non-ASCII text is kept as it is, slashes unescaped. */
    s = parse("{\"description\": \"caf\\u00e9 a/b\"}");
    ASSERT_STR_EQ(schema_canonical(s), "{\"description\":\"caf\xc3\xa9 a/b\"}");
    schema_free(s);
}

static void test_types(void)
{
    check("{\"type\": \"integer\"}", G("1", "-7", "1.0", "10000000000000000000000"),
          B("1.5", "", "type", "\"1\"", "", "type", "null", "", "type"));
    check("{\"type\": [\"string\", \"null\"]}", G("\"x\"", "null"),
          B("1", "", "type", "[]", "", "type", "{}", "", "type", "true", "", "type"));
    check("{\"type\": \"number\"}", G("1", "1.5", "-1e300"), B("\"1\"", "", "type"));
    check("{\"type\": \"boolean\"}", G("true", "false"), B("0", "", "type"));
    check("{\"type\": \"array\"}", G("[]", "[1]"), B("{}", "", "type"));
    schema *s = parse("{\"properties\": {\"n\": {\"type\": \"integer\"}}}");
    schema_error err = {0};
    ASSERT_EQ(schema_validate_json(s, "{\"n\": \"five\"}", 13, &err), -1);
    ASSERT_STR_EQ(err.message, "expected integer, got string");
    ASSERT_STR_EQ(err.path, "/n");
    ASSERT_EQ(schema_validate_json(s, "{\"n\": 1.5}", 10, &err), -1);
    ASSERT_STR_EQ(err.message, "expected integer, got number");
    ASSERT_EQ(schema_validate_json(s, "{\"n\": ", 6, &err), -1);
    ASSERT_STR_EQ(err.rule, "syntax");
    schema_free(s);
}

static void test_objects(void)
{
    const char *sch = "{\"type\": \"object\", \"properties\": {"
                      "\"name\": {\"type\": \"string\"},"
                      "\"address\": {\"type\": \"object\", \"properties\": {"
                      "  \"zip\": {\"type\": \"string\", \"maxLength\": 5},"
                      "  \"a/b~c\": {\"type\": \"integer\"}},"
                      "  \"required\": [\"zip\"]}},"
                      "\"required\": [\"name\"], \"additionalProperties\": false}";
    check(sch,
          G("{\"name\": \"x\"}", "{\"name\": \"x\", \"address\": {\"zip\": \"12345\"}}",
            "{\"name\": \"x\", \"address\": {\"zip\": \"1\", \"a/b~c\": 3, \"other\": 1}}"),
          B("{}", "", "required", "{\"name\": \"x\", \"address\": {}}", "/address", "required",
            "{\"name\": \"x\", \"address\": {\"zip\": \"123456\"}}", "/address/zip", "maxLength",
            "{\"name\": \"x\", \"address\": {\"zip\": \"1\", \"a/b~c\": \"s\"}}",
            "/address/a~1b~0c", "type", "{\"name\": \"x\", \"extra\": 1}", "/extra",
            "additionalProperties", "[]", "", "type"));
    schema *s = parse(sch);
    schema_error err = {0};
    ASSERT_EQ(schema_validate_json(s, "{\"name\":\"x\",\"address\":{}}", 25, &err), -1);
    ASSERT_STR_EQ(err.message, "required property 'zip' is missing");
    schema_free(s);
    check("{\"patternProperties\": {\"^n_\": {\"type\": \"number\"}},"
          " \"additionalProperties\": {\"type\": \"string\"}}",
          G("{\"n_a\": 1, \"b\": \"s\"}", "{}"),
          B("{\"n_a\": \"1\"}", "/n_a", "type", "{\"b\": 2}", "/b", "type"));
    check("{\"propertyNames\": {\"maxLength\": 3}, \"minProperties\": 1, \"maxProperties\": 2}",
          G("{\"abc\": 1}", "{\"a\": 1, \"b\": 2}", "3"),
          B("{\"abcd\": 1}", "/abcd", "maxLength", "{}", "", "minProperties",
            "{\"a\": 1, \"b\": 2, \"c\": 3}", "", "maxProperties"));
    check("{\"dependencies\": {\"card\": [\"billing\"], \"x\": {\"required\": [\"y\"]}}}",
          G("{}", "{\"card\": 1, \"billing\": 2}", "{\"x\": 1, \"y\": 1}"),
          B("{\"card\": 1}", "", "dependencies", "{\"x\": 1}", "", "required"));
    check("{\"$schema\": \"https://json-schema.org/draft/2019-09/schema\","
          " \"dependentRequired\": {\"card\": [\"billing\"]},"
          " \"dependentSchemas\": {\"x\": {\"properties\": {\"y\": {\"const\": 1}}}}}",
          G("{\"card\": 1, \"billing\": 2}", "{\"x\": 1, \"y\": 1}"),
          B("{\"card\": 1}", "", "dependentRequired", "{\"x\": 1, \"y\": 2}", "/y", "const"));
}

static void test_arrays(void)
{
    check("{\"items\": {\"type\": \"integer\"}, \"minItems\": 1, \"maxItems\": 3,"
          " \"uniqueItems\": true}",
          G("[1]", "[1, 2, 3]", "{}"),
          B("[]", "", "minItems", "[1, 2, 3, 4]", "", "maxItems", "[1, \"x\"]", "/1", "type",
            "[1, 1.0]", "", "uniqueItems"));
    /* uniqueItems over many items: objects equal whatever their key order. */
    check("{\"uniqueItems\": true}",
          G("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]",
            "[{\"a\":1,\"b\":2},{\"a\":2,\"b\":1}]"),
          B("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,{\"a\":1,\"b\":[2]},20,"
            "{\"b\":[2.0],\"a\":1}]",
            "", "uniqueItems", "[{\"a\":1,\"b\":2},{\"b\":2,\"a\":1}]", "", "uniqueItems"));
    check("{\"items\": [{\"type\": \"string\"}, {\"type\": \"integer\"}],"
          " \"additionalItems\": false}",
          G("[]", "[\"a\"]", "[\"a\", 1]"),
          B("[1]", "/0", "type", "[\"a\", 1, 2]", "/2", "additionalItems"));
    check("{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\","
          " \"prefixItems\": [{\"type\": \"string\"}], \"items\": {\"type\": \"boolean\"}}",
          G("[\"a\", true, false]", "[]"), B("[\"a\", 1]", "/1", "type", "[1]", "/0", "type"));
    check("{\"contains\": {\"type\": \"string\"}}", G("[1, \"a\"]"),
          B("[1, 2]", "", "contains", "[]", "", "contains"));
    check("{\"$schema\": \"https://json-schema.org/draft/2019-09/schema\","
          " \"contains\": {\"type\": \"string\"}, \"minContains\": 2, \"maxContains\": 3}",
          G("[\"a\", \"b\", 1]"),
          B("[\"a\", 1]", "", "minContains", "[\"a\", \"b\", \"c\", \"d\"]", "", "maxContains"));
}

static void test_strings(void)
{
    /* Lengths count code points: "é" is one. */
    check("{\"minLength\": 2, \"maxLength\": 3}", G("\"ab\"", "\"\xc3\xa9\xc3\xa9\xc3\xa9\"", "5"),
          B("\"a\"", "", "minLength", "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"", "", "maxLength"));
    check("{\"pattern\": \"^[a-z]+-\\\\d{2}$\"}", G("\"ab-12\""),
          B("\"ab-1\"", "", "pattern", "\"AB-12\"", "", "pattern"));
    /* Unanchored, as ECMA-262's test(). */
    check("{\"pattern\": \"b+\"}", G("\"abbc\""), B("\"ac\"", "", "pattern"));
    /* Escaped and raw multibyte characters count one each, in strings longer than the
     * parser's 8-byte steps; strings of ASCII only count their bytes. */
    check("{\"maxLength\": 10}",
          G("\"aaaaaaaaa\\u00e9\"",
            "\"aaaaaaaa\xc3\xa9"
            "a\"",
            "\"aaaaaaaaaa\"", "\"\\ud83d\\ude00aaaaaaaaa\""),
          B("\"aaaaaaaaaa\\u00e9\"", "", "maxLength", "\"aaaaaaaaaa\xc3\xa9\"", "", "maxLength",
            "\"aaaaaaaaaaa\"", "", "maxLength", "\"\\ud83d\\ude00aaaaaaaaaa\"", "", "maxLength"));
    /* "\u0000" is valid JSON, and counts as one character. */
    check("{\"maxLength\": 3}", G("\"a\\u0000b\""), B("\"a\\u0000bc\"", "", "maxLength"));
    check("{\"properties\": {\"t\": {\"format\": \"date-time\"}, \"d\": {\"format\": \"date\"},"
          " \"e\": {\"format\": \"email\"}, \"4\": {\"format\": \"ipv4\"},"
          " \"6\": {\"format\": \"ipv6\"}, \"u\": {\"format\": \"uuid\"},"
          " \"h\": {\"format\": \"hostname-unchecked\"}}}",
          G("{\"t\": \"2024-02-29T10:20:30.5Z\", \"d\": \"2023-12-31\", \"e\": \"a@b.io\","
            " \"4\": \"10.0.0.1\", \"6\": \"::1\","
            " \"u\": \"123e4567-e89b-12d3-a456-426614174000\", \"h\": \"!!\"}",
            "{\"t\": \"2024-01-01T00:00:00+05:30\"}"),
          B("{\"t\": \"2023-02-29T10:20:30Z\"}", "/t", "format", "{\"t\": \"2024-01-01 25:00\"}",
            "/t", "format", "{\"d\": \"2023-13-01\"}", "/d", "format", "{\"e\": \"ab.io\"}", "/e",
            "format", "{\"4\": \"256.1.1.1\"}", "/4", "format", "{\"6\": \"1::2::3\"}", "/6",
            "format", "{\"u\": \"123e4567e89b12d3a456426614174000\"}", "/u", "format"));
}

static void test_numbers(void)
{
    check("{\"minimum\": 1, \"maximum\": 10, \"multipleOf\": 0.5}", G("1", "10", "2.5", "\"x\""),
          B("0.5", "", "minimum", "10.5", "", "maximum", "2.2", "", "multipleOf"));
    check("{\"exclusiveMinimum\": 1, \"exclusiveMaximum\": 3}", G("2", "1.0001"),
          B("1", "", "exclusiveMinimum", "3", "", "exclusiveMaximum"));
    /* Draft 4's boolean form. */
    check("{\"$schema\": \"http://json-schema.org/draft-04/schema#\", \"minimum\": 1,"
          " \"exclusiveMinimum\": true, \"maximum\": 3, \"exclusiveMaximum\": false}",
          G("2", "3"), B("1", "", "exclusiveMinimum", "3.5", "", "maximum"));
    check("{\"multipleOf\": 3}", G("9", "-3", "0"), B("10", "", "multipleOf"));
    check("{\"multipleOf\": 0.01}", G("19.99", "0.07"), B("0.001", "", "multipleOf"));
}

static void test_enum_const(void)
{
    check("{\"enum\": [\"red\", 1, null, {\"a\": [1]}]}",
          G("\"red\"", "1", "1.0", "null", "{\"a\": [1]}"),
          B("\"blue\"", "", "enum", "2", "", "enum", "{\"a\": [2]}", "", "enum"));
    check("{\"properties\": {\"v\": {\"const\": \"x\"}}}", G("{\"v\": \"x\"}"),
          B("{\"v\": \"y\"}", "/v", "const"));
}

static void test_applicators(void)
{
    check("{\"allOf\": [{\"type\": \"integer\"}, {\"minimum\": 3}]}", G("3"),
          B("2", "", "minimum", "3.5", "", "type"));
    check("{\"anyOf\": [{\"type\": \"string\"}, {\"type\": \"integer\"}]}", G("\"a\"", "1"),
          B("1.5", "", "anyOf"));
    check("{\"oneOf\": [{\"type\": \"integer\"}, {\"minimum\": 2}]}", G("1", "2.5"),
          B("3", "", "oneOf", "0.5", "", "oneOf"));
    check("{\"not\": {\"type\": \"string\"}}", G("1"), B("\"a\"", "", "not"));
    check("{\"if\": {\"properties\": {\"c\": {\"const\": \"US\"}}},"
          " \"then\": {\"required\": [\"zip\"]}, \"else\": {\"required\": [\"postcode\"]}}",
          G("{\"c\": \"US\", \"zip\": 1}", "{\"c\": \"FR\", \"postcode\": 1}"),
          B("{\"c\": \"US\"}", "", "required", "{\"c\": \"FR\", \"zip\": 1}", "", "required"));
    /* Unknown keywords are kept and ignored. */
    check("{\"x-kafka\": {\"anything\": true}, \"type\": \"string\"}", G("\"a\""),
          B("1", "", "type"));
}

static void test_refs(void)
{
    check("{\"definitions\": {\"pos\": {\"type\": \"integer\", \"minimum\": 1}},"
          " \"properties\": {\"a\": {\"$ref\": \"#/definitions/pos\"},"
          " \"b\": {\"$ref\": \"#/$defs/neg\"}},"
          " \"$defs\": {\"neg\": {\"maximum\": -1}}}",
          G("{\"a\": 1, \"b\": -1}"),
          B("{\"a\": 0}", "/a", "minimum", "{\"b\": 0}", "/b", "maximum"));
    /* A recursive schema: a tree of any depth within the bound. */
    const char *tree = "{\"type\": \"object\", \"properties\": {\"v\": {\"type\": \"integer\"},"
                       " \"kids\": {\"type\": \"array\", \"items\": {\"$ref\": \"#\"}}}}";
    check(tree, G("{\"v\": 1, \"kids\": [{\"v\": 2, \"kids\": [{\"v\": 3}]}]}"),
          B("{\"kids\": [{\"kids\": [{\"v\": \"x\"}]}]}", "/kids/0/kids/0/v", "type"));
    schema *s = parse(tree);
    char deep[4096] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "{\"kids\":[");
    strcat(deep, "{}");
    for (int i = 0; i < 40; i++)
        strcat(deep, "]}");
    schema_error err = {0};
    /* 80 levels of instance: past the bound, refused as such. */
    ASSERT_EQ(schema_validate_json(s, deep, strlen(deep), &err), -1);
    ASSERT_STR_EQ(err.rule, "depth");
    schema_free(s);
    /* A schema that refers to itself without consuming the instance: refused, never a loop;
     * and the refusal is not turned into a success by "not". */
    s = parse("{\"$ref\": \"#\"}");
    ASSERT_EQ(schema_validate_json(s, "1", 1, &err), -1);
    ASSERT_STR_EQ(err.rule, "$ref");
    schema_free(s);
    s = parse("{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\","
              " \"$defs\": {\"loop\": {\"$ref\": \"#/$defs/loop\"}},"
              " \"not\": {\"$ref\": \"#/$defs/loop\"}}");
    ASSERT_EQ(schema_validate_json(s, "1", 1, &err), -1);
    ASSERT_STR_EQ(err.rule, "$ref");
    schema_free(s);
    /* Exponential fan-out over references is bounded in steps. */
    s = parse("{\"anyOf\": [{\"allOf\": [{\"$ref\": \"#\"}, false]}, {\"$ref\": \"#\"}]}");
    ASSERT_EQ(schema_validate_json(s, "1", 1, &err), -1);
    ASSERT(!strcmp(err.rule, "$ref") || !strcmp(err.rule, "steps"));
    schema_free(s);
    /* $id-relative references, anchors, and referenced schemas by name. */
    check("{\"$id\": \"http://x.example/root.json\", \"properties\": {"
          " \"a\": {\"$ref\": \"item.json\"}, \"b\": {\"$ref\": \"#here\"}},"
          " \"$defs\": {\"i\": {\"$id\": \"item.json\", \"type\": \"string\"},"
          " \"h\": {\"$anchor\": \"here\", \"type\": \"integer\"}}}",
          G("{\"a\": \"s\", \"b\": 1}"),
          B("{\"a\": 1}", "/a", "type", "{\"b\": \"s\"}", "/b", "type"));
    schema_dep deps[] = {
        {"address.json",
         "{\"type\": \"object\", \"required\": [\"zip\"],"
         " \"properties\": {\"zip\": {\"$ref\": \"#/$defs/zip\"}},"
         " \"$defs\": {\"zip\": {\"type\": \"string\", \"maxLength\": 5}}}",
         0},
    };
    deps[0].len = strlen(deps[0].text);
    s = parse_deps("{\"properties\": {\"home\": {\"$ref\": \"address.json\"}}}", deps, 1);
    good(s, "{\"home\": {\"zip\": \"123\"}}");
    bad(s, "{\"home\": {}}", "/home", "required");
    bad(s, "{\"home\": {\"zip\": \"1234567\"}}", "/home/zip", "maxLength");
    schema_free(s);
    /* Draft 7: the keywords beside "$ref" are ignored; 2019-09: they apply too. */
    check("{\"definitions\": {\"s\": {\"type\": \"string\"}},"
          " \"$ref\": \"#/definitions/s\", \"maxLength\": 1}",
          G("\"abc\""), B("1", "", "type"));
    check("{\"$schema\": \"https://json-schema.org/draft/2019-09/schema\","
          " \"$defs\": {\"s\": {\"type\": \"string\"}}, \"$ref\": \"#/$defs/s\", \"maxLength\": 1}",
          G("\"a\""), B("\"abc\"", "", "maxLength"));
}

static void test_pattern_backtracking(void)
{
    /* (a+)+$ against "aaaa...b" takes exponential time in a backtracking engine: the match
     * limit ends it, and the value is refused by its pattern. */
    schema *s = parse("{\"pattern\": \"^(a+)+$\"}");
    char v[100];
    v[0] = '"';
    memset(v + 1, 'a', 60);
    v[61] = 'b';
    v[62] = '"';
    v[63] = 0;
    schema_error err = {0};
    ASSERT_EQ(schema_validate_json(s, v, strlen(v), &err), -1);
    ASSERT_STR_EQ(err.rule, "pattern");
    good(s, "\"aaaa\"");
    schema_free(s);
}

static void test_accepts_string(void)
{
    schema *s = parse("{\"type\": \"object\", \"properties\": {"
                      "\"s\": {\"type\": \"string\"}, \"n\": {\"type\": \"integer\"},"
                      "\"u\": {\"type\": [\"integer\", \"string\"]},"
                      "\"e\": {\"enum\": [1, 2]}, \"r\": {\"$ref\": \"#/definitions/num\"},"
                      "\"o\": {\"anyOf\": [{\"type\": \"object\"}, {\"type\": \"array\"}]}},"
                      "\"patternProperties\": {\"^x_\": {\"type\": \"boolean\"}},"
                      "\"definitions\": {\"num\": {\"type\": \"number\"}}}");
    ASSERT(schema_json_accepts_string_at(s, "s"));
    ASSERT(!schema_json_accepts_string_at(s, "n"));
    ASSERT(schema_json_accepts_string_at(s, "u"));
    ASSERT(!schema_json_accepts_string_at(s, "e"));
    ASSERT(!schema_json_accepts_string_at(s, "r"));
    ASSERT(!schema_json_accepts_string_at(s, "o"));
    ASSERT(!schema_json_accepts_string_at(s, "x_flag"));
    ASSERT(schema_json_accepts_string_at(s, "unknown"));
    schema_free(s);
    s = parse("{\"additionalProperties\": {\"type\": \"integer\"}}");
    ASSERT(!schema_json_accepts_string_at(s, "any"));
    schema_free(s);
}

/* Whether data written with `writer` can be read with `reader` (BACKWARD: reader = new); when
 * `type` is given, an incompatibility of that type must be among the messages. */
static void compat(const char *writer, const char *reader, bool expect, const char *type)
{
    schema *w = parse(writer), *r = parse(reader);
    schema_msgs m = {0};
    bool ok = schema_can_read(r, w, &m);
    if (ok != expect)
        TEST_FAIL_("can_read(%s <- %s) = %d, not %d: %s", reader, writer, ok, expect,
                   m.text ? m.text : "");
    if (!expect) {
        ASSERT(m.count > 0);
        if (type) {
            char want[160];
            snprintf(want, sizeof(want), "{errorType:\"%s\", description:\"", type);
            ASSERT_CONTAINS(m.text, want);
        }
    } else {
        ASSERT(m.count == 0);
    }
    schema_msgs_free(&m);
    schema_free(w);
    schema_free(r);
}

#define OBJ(props, extra) "{\"type\": \"object\", \"properties\": {" props "}" extra "}"
#define CLOSED ", \"additionalProperties\": false"

static void test_compat_objects(void)
{
    /* Open content model: a property added may clash with what old data held there. */
    compat(OBJ("\"a\": {\"type\": \"string\"}", ""),
           OBJ("\"a\": {\"type\": \"string\"}, \"b\": {\"type\": \"integer\"}", ""), false,
           "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL");
    compat(OBJ("\"a\": {\"type\": \"string\"}", ""),
           OBJ("\"a\": {\"type\": \"string\"}, \"b\": {}", ""), true, NULL);
    /* Removing from an open model is fine; from a closed one, not. */
    compat(OBJ("\"a\": {\"type\": \"string\"}, \"b\": {\"type\": \"integer\"}", ""),
           OBJ("\"a\": {\"type\": \"string\"}", ""), true, NULL);
    compat(OBJ("\"a\": {\"type\": \"string\"}, \"b\": {\"type\": \"integer\"}", CLOSED),
           OBJ("\"a\": {\"type\": \"string\"}", CLOSED), false,
           "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL");
    /* Closed: an optional property added is fine, a required one is not (unless defaulted). */
    compat(OBJ("\"a\": {\"type\": \"string\"}", CLOSED),
           OBJ("\"a\": {\"type\": \"string\"}, \"b\": {\"type\": \"integer\"}", CLOSED), true,
           NULL);
    compat(OBJ("\"a\": {\"type\": \"string\"}", CLOSED),
           OBJ("\"a\": {\"type\": \"string\"}, \"b\": {\"type\": \"integer\"}",
               CLOSED ", \"required\": [\"b\"]"),
           false, "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL");
    compat(OBJ("\"a\": {\"type\": \"string\"}", CLOSED),
           OBJ("\"a\": {\"type\": \"string\"}, \"b\": {\"type\": \"integer\", \"default\": 0}",
               CLOSED ", \"required\": [\"b\"]"),
           true, NULL);
    /* Partially open: what is added or removed must fit additionalProperties' schema. */
    compat(
        OBJ("\"a\": {\"type\": \"string\"}", ", \"additionalProperties\": {\"type\": \"string\"}"),
        OBJ("\"a\": {\"type\": \"string\"}, \"b\": {\"type\": \"string\"}",
            ", \"additionalProperties\": {\"type\": \"string\"}"),
        true, NULL);
    compat(
        OBJ("\"a\": {\"type\": \"string\"}", ", \"additionalProperties\": {\"type\": \"string\"}"),
        OBJ("\"a\": {\"type\": \"string\"}, \"b\": {\"type\": \"integer\"}",
            ", \"additionalProperties\": {\"type\": \"string\"}"),
        false, "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL");
    /* Required: added to an existing property is not compatible, removed is. */
    compat(OBJ("\"a\": {\"type\": \"string\"}", ""),
           OBJ("\"a\": {\"type\": \"string\"}", ", \"required\": [\"a\"]"), false,
           "REQUIRED_ATTRIBUTE_ADDED");
    compat(OBJ("\"a\": {\"type\": \"string\"}", ", \"required\": [\"a\"]"),
           OBJ("\"a\": {\"type\": \"string\"}", ""), true, NULL);
    /* Closing an open model. */
    compat(OBJ("\"a\": {\"type\": \"string\"}", ""), OBJ("\"a\": {\"type\": \"string\"}", CLOSED),
           false, "ADDITIONAL_PROPERTIES_REMOVED");
    compat(OBJ("\"a\": {\"type\": \"string\"}", CLOSED), OBJ("\"a\": {\"type\": \"string\"}", ""),
           true, NULL);
    /* The message, in Confluent's words and paths. */
    schema *w = parse(OBJ("\"a\": {\"type\": \"string\"}", CLOSED));
    schema *r = parse(OBJ("\"a\": {\"type\": \"string\"}, \"zip\": {\"type\": \"string\"}",
                          CLOSED ", \"required\": [\"zip\"]"));
    schema_msgs m = {0};
    ASSERT(!schema_can_read(r, w, &m));
    ASSERT_STR_EQ(m.text, "{errorType:\"REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL\", "
                          "description:\"The new schema has an unopen content model and has a "
                          "required property at path '#/properties/zip' which is missing in the "
                          "old schema'}");
    schema_msgs_free(&m);
    schema_free(w);
    schema_free(r);
}

static void test_compat_values(void)
{
    /* Types: integer -> number widens; back narrows; string -> integer changes. */
    compat("{\"type\": \"integer\"}", "{\"type\": \"number\"}", true, NULL);
    compat("{\"type\": \"number\"}", "{\"type\": \"integer\"}", false, "TYPE_NARROWED");
    compat("{\"type\": \"string\"}", "{\"type\": \"integer\"}", false, "TYPE_CHANGED");
    compat("{\"type\": \"string\"}", "{\"type\": [\"string\", \"null\"]}", true, NULL);
    compat("{\"type\": [\"string\", \"null\"]}", "{\"type\": \"string\"}", false, NULL);
    compat("{\"type\": \"string\"}", "{}", true, NULL);
    compat("{\"type\": \"string\"}", "true", true, NULL);
    /* Enums. */
    compat("{\"enum\": [\"a\", \"b\"]}", "{\"enum\": [\"a\", \"b\", \"c\"]}", true, NULL);
    compat("{\"enum\": [\"a\", \"b\"]}", "{\"enum\": [\"a\"]}", false, "ENUM_ARRAY_NARROWED");
    compat("{\"enum\": [\"a\", \"b\"]}", "{\"enum\": [\"a\", \"c\"]}", false, "ENUM_ARRAY_CHANGED");
    /* maxLength added, decreased, increased. */
    compat("{\"type\": \"string\"}", "{\"type\": \"string\", \"maxLength\": 5}", false,
           "MAX_LENGTH_ADDED");
    compat("{\"type\": \"string\", \"maxLength\": 5}", "{\"type\": \"string\", \"maxLength\": 4}",
           false, "MAX_LENGTH_DECREASED");
    compat("{\"type\": \"string\", \"maxLength\": 5}", "{\"type\": \"string\", \"maxLength\": 6}",
           true, NULL);
    compat("{\"type\": \"string\", \"maxLength\": 5}", "{\"type\": \"string\"}", true, NULL);
    compat("{\"type\": \"number\", \"minimum\": 0}", "{\"type\": \"number\", \"minimum\": 1}",
           false, "MINIMUM_INCREASED");
    compat("{\"type\": \"number\", \"multipleOf\": 2}", "{\"type\": \"number\", \"multipleOf\": 4}",
           false, "MULTIPLE_OF_EXPANDED");
    compat("{\"type\": \"number\", \"multipleOf\": 4}", "{\"type\": \"number\", \"multipleOf\": 2}",
           true, NULL);
    compat("{\"type\": \"string\", \"pattern\": \"a\"}",
           "{\"type\": \"string\", \"pattern\": \"b\"}", false, "PATTERN_CHANGED");
}

static void test_compat_arrays_combined(void)
{
    compat("{\"type\": \"array\", \"items\": {\"type\": \"integer\"}}",
           "{\"type\": \"array\", \"items\": {\"type\": \"number\"}}", true, NULL);
    compat("{\"type\": \"array\", \"items\": {\"type\": \"number\"}}",
           "{\"type\": \"array\", \"items\": {\"type\": \"integer\"}}", false, "TYPE_NARROWED");
    compat("{\"type\": \"array\", \"items\": {\"type\": \"string\"}}",
           "{\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"maxItems\": 3}", false,
           "MAX_ITEMS_ADDED");
    compat("{\"type\": \"array\", \"items\": {\"type\": \"string\"}}",
           "{\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"uniqueItems\": true}", false,
           "UNIQUE_ITEMS_ADDED");
    /* Tuples: an item added to a closed tuple is fine, to an open one not. */
    compat("{\"type\": \"array\", \"items\": [{\"type\": \"string\"}], \"additionalItems\": false}",
           "{\"type\": \"array\", \"items\": [{\"type\": \"string\"}, {\"type\": \"integer\"}],"
           " \"additionalItems\": false}",
           true, NULL);
    compat("{\"type\": \"array\", \"items\": [{\"type\": \"string\"}]}",
           "{\"type\": \"array\", \"items\": [{\"type\": \"string\"}, {\"type\": \"integer\"}]}",
           false, "ITEM_ADDED_TO_OPEN_CONTENT_MODEL");
    /* oneOf: a member added extends the sum; removed narrows it; changed. */
    const char *two = "{\"oneOf\": [{\"type\": \"string\"}, {\"type\": \"integer\"}]}";
    const char *three = "{\"oneOf\": [{\"type\": \"string\"}, {\"type\": \"integer\"},"
                        " {\"type\": \"boolean\"}]}";
    compat(two, three, true, NULL);
    compat(three, two, false, "SUM_TYPE_NARROWED");
    compat(two, "{\"oneOf\": [{\"type\": \"string\"}, {\"type\": \"array\"}]}", false,
           "COMBINED_TYPE_SUBSCHEMAS_CHANGED");
    compat("{\"type\": \"string\"}", two, true, NULL);
    compat(two, "{\"anyOf\": [{\"type\": \"string\"}, {\"type\": \"integer\"}]}", true, NULL);
    compat("{\"anyOf\": [{\"type\": \"string\"}, {\"type\": \"integer\"}]}", two, false,
           "COMBINED_TYPE_CHANGED");
    compat("{\"not\": {\"type\": \"string\"}}", "{\"not\": {\"type\": [\"string\", \"null\"]}}",
           false, "NOT_TYPE_EXTENDED");
    /* $ref: compared through, and a recursive schema compared with itself terminates. */
    const char *tree = "{\"type\": \"object\", \"properties\": {\"v\": {\"type\": \"integer\"},"
                       " \"kids\": {\"type\": \"array\", \"items\": {\"$ref\": \"#\"}}}}";
    compat(tree, tree, true, NULL);
    compat(tree,
           "{\"type\": \"object\", \"properties\": {\"v\": {\"type\": \"string\"},"
           " \"kids\": {\"type\": \"array\", \"items\": {\"$ref\": \"#\"}}}}",
           false, "TYPE_CHANGED");
    /* A subschema of anyOf that refers back to the anyOf (found by the fuzzer: the comparison
     * recursed without end). */
    const char *loop = "{\"$defs\": {\"n\": {\"anyOf\": [{\"type\": \"integer\"},"
                       " {\"$ref\": \"#/$defs/n\"}]}}, \"$ref\": \"#/$defs/n\"}";
    compat(loop, loop, true, NULL);
    compat(loop, "{\"type\": \"integer\"}", false, NULL);
    compat("{\"definitions\": {\"a\": {\"type\": \"integer\"}}, \"properties\": {\"x\":"
           " {\"$ref\": \"#/definitions/a\"}}}",
           "{\"properties\": {\"x\": {\"type\": \"number\"}}}", true, NULL);
}

/* A parsed schema is immutable: threads validate with it at once (patterns use per-thread
 * match data); run under ThreadSanitizer too. */
static void *validate_many(void *arg)
{
    const schema *s = arg;
    schema_error err;
    for (int i = 0; i < 2000; i++) {
        const char *ok = "{\"sku\": \"ABC-1234\", \"n\": 3}";
        const char *no = "{\"sku\": \"abc-1234\", \"n\": 3}";
        if (schema_validate_json(s, ok, strlen(ok), &err) ||
            !schema_validate_json(s, no, strlen(no), &err) || strcmp(err.path, "/sku"))
            return (void *)1;
    }
    return NULL;
}

static void test_threads(void)
{
    schema *s = parse("{\"properties\": {\"sku\": {\"pattern\": \"^[A-Z]{3}-[0-9]{4}$\"},"
                      " \"n\": {\"type\": \"integer\"}}, \"required\": [\"sku\"]}");
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, validate_many, s), 0);
    for (int i = 0; i < 4; i++) {
        void *rc = NULL;
        ASSERT_EQ(pthread_join(t[i], &rc), 0);
        ASSERT(rc == NULL);
    }
    schema_free(s);
}

TEST_MAIN(TEST(test_parse_errors), TEST(test_canonical), TEST(test_types), TEST(test_objects),
          TEST(test_arrays), TEST(test_strings), TEST(test_numbers), TEST(test_enum_const),
          TEST(test_applicators), TEST(test_refs), TEST(test_pattern_backtracking),
          TEST(test_accepts_string), TEST(test_compat_objects), TEST(test_compat_values),
          TEST(test_compat_arrays_combined), TEST(test_threads))
