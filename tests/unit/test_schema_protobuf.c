/* Unit tests for the Protobuf schema type (src/schema/protobuf*.c): the .proto parser on every
 * construct and on errors (with their line:column), truncated text at every byte, name
 * resolution across scopes, imports and the well-known types, the canonical form and the record
 * name, Confluent's compatibility rules, and the validation of binary and JSON payloads
 * (message indexes, wire types, truncation at every byte). */
#include <stdlib.h>

#include "schema/schema.h"
#include "test.h"

static schema *parse_deps(const char *text, const schema_dep *deps, size_t ndeps)
{
    schema *s = NULL;
    schema_error err = {0};
    int rc = schema_parse(SCHEMA_PROTOBUF, text, strlen(text), deps, ndeps, &s, &err);
    if (rc != 0)
        TEST_FAIL_("parse failed at %s (%s): %s\n%s", err.path, err.rule, err.message, text);
    return s;
}

static schema *parse(const char *text)
{
    return parse_deps(text, NULL, 0);
}

/* The text must be refused with the error at `path` and a message containing `needle`. */
static void refused(const char *text, const char *path, const char *needle)
{
    schema *s = NULL;
    schema_error err = {0};
    int rc = schema_parse(SCHEMA_PROTOBUF, text, strlen(text), NULL, 0, &s, &err);
    if (rc == 0)
        TEST_FAIL_("accepted: %s", text);
    ASSERT(s == NULL);
    if (path)
        ASSERT_STR_EQ(err.path, path);
    ASSERT_CONTAINS(err.message, needle);
}

static const char *ORDER = "// An order.\n"
                           "syntax = \"proto3\";\n"
                           "package shop.v1;\n"
                           "import \"google/protobuf/timestamp.proto\";\n"
                           "option java_package = \"com.example.shop\";\n"
                           "message Order {\n"
                           "  string id = 1 [json_name = \"orderId\"];\n"
                           "  repeated Item items = 2;\n"
                           "  google.protobuf.Timestamp at = 3;\n"
                           "  Status status = 4;\n"
                           "  map<string, int64> totals = 5;\n"
                           "  oneof payment { string card = 6; Bank bank = 7; }\n"
                           "  optional double discount = 8 [deprecated = true];\n"
                           "  repeated int32 codes = 9 [packed = false];\n"
                           "  reserved 10, 12 to 14;\n"
                           "  reserved \"old\";\n"
                           "  message Item { string sku = 1; uint32 qty = 2; }\n"
                           "  message Bank { string iban = 1; }\n"
                           "  enum Status { UNKNOWN = 0; NEW = 1; PAID = 2; }\n"
                           "}\n"
                           "service Shop { rpc Place (Order) returns (Order); }\n";

static void test_parse_constructs(void)
{
    schema *s = parse(ORDER);
    ASSERT_STR_EQ(schema_record_name(s), "shop.v1.Order");
    ASSERT_EQ(schema_get_type(s), SCHEMA_PROTOBUF);
    schema_free(s);

    /* proto2: labels, defaults, groups, extensions and extend, aliases, nested scopes. */
    s = parse("package a.b;\n"
              "import \"google/protobuf/descriptor.proto\";\n"
              "extend google.protobuf.FieldOptions { optional string my_opt = 51234; }\n"
              "message M {\n"
              "  required int32 a = 1 [default = -5];\n"
              "  optional string b = 2 [default = \"x\\n\\x41\\101\", (my_opt) = \"y\"];\n"
              "  repeated group Line = 3 { optional int32 n = 1; }\n"
              "  optional E e = 4 [default = TWO];\n"
              "  optional float f = 5 [default = -inf];\n"
              "  optional bool t = 6 [default = true];\n"
              "  extensions 100 to 199, 1000 to max;\n"
              "  enum E { option allow_alias = true; ONE = 1; UNO = 1; TWO = 2; reserved 9; }\n"
              "  oneof choice { int32 x = 7; group G = 8 { optional int32 y = 1; } }\n"
              "  message Inner { optional .a.b.M.E e = 1; optional M m = 2; }\n"
              "}\n"
              "extend M { optional int32 extra = 150; }\n"
              "message N { option (my_file_opt) = { a: 1 b: [2, 3] c { d: \"e\" } }; }\n");
    ASSERT_STR_EQ(schema_record_name(s), "a.b.M");
    schema_free(s);

    /* Without a message the record name is the first enum's. */
    s = parse("syntax = 'proto3'; enum Color { RED = 0; }");
    ASSERT_STR_EQ(schema_record_name(s), "Color");
    schema_free(s);
    s = parse("syntax = \"proto3\";");
    ASSERT(schema_record_name(s) == NULL);
    schema_free(s);
    /* Comments of both kinds, empty statements, a service with options and streams. */
    s = parse("/* a\n b */ syntax = \"proto3\"; ;; message A { ; } // c\n"
              "service S { option deprecated = true; rpc R (stream A) returns (stream A) "
              "{ option idempotency_level = NO_SIDE_EFFECTS; } rpc Q (.A) returns (A); }");
    schema_free(s);
}

static void test_parse_errors(void)
{
    refused("syntax = \"proto3\";\nmessage A {\n  int32 a = 0;\n}", "3:13", "out of range");
    refused("syntax = \"proto3\";\nmessage A { int32 a = 19500; }", "2:23", "19000");
    refused("syntax = \"proto3\";\nmessage A { int32 a = 536870912; }", "2:23", "out of range");
    refused("syntax = \"proto3\";\nmessage A { int32 a = 1; string b = 1; }", "2:26",
            "already been used");
    refused("syntax = \"proto3\";\nmessage A { int32 a = 1; string a = 2; }", "2:26",
            "already defined");
    refused("syntax = \"proto3\";\nmessage A { reserved 2; int32 a = 2; }", "2:25", "reserved");
    refused("syntax = \"proto3\";\nmessage A { int32 foo_bar = 1; int32 fooBar = 2; }", "2:32",
            "JSON name \"fooBar\"");
    refused("syntax = \"proto3\";\nmessage A { int32 a = 1 [json_name = \"b\"]; int32 b = 2; }",
            "2:44", "conflicts");
    refused("syntax = \"proto3\";\nmessage A { reserved \"a\"; int32 a = 3; }", "2:27", "reserved");
    refused("syntax = \"proto3\";\nmessage A { required int32 a = 1; }", "2:13", "proto3");
    refused("syntax = \"proto3\";\nmessage A { int32 a = 1 [default = 3]; }", "2:26", "proto3");
    refused("syntax = \"proto3\";\nenum E { A = 1; }", "2:10", "zero");
    refused("syntax = \"proto3\";\nmessage A { B b = 1; }", "2:13", "\"B\" is not defined");
    refused("message A { int32 a = 1; }", "1:13", "\"required\", \"optional\"");
    refused("edition = \"2023\";", "1:1", "editions are not supported");
    refused("syntax = \"proto4\";", "1:10", "unknown syntax");
    refused("syntax = \"proto3\"; message A { int32 a = 1 }", "1:44", "expected ';'");
    refused("syntax = \"proto3\";\nmessage A {\n  string s = 1;\n", "4:1", "expected '}'");
    refused("syntax = \"proto3\";\n/* open", "2:1", "comment is not closed");
    refused("syntax = \"proto3\";\noption x = \"a\\qb\";", "2:14", "invalid escape");
    refused("syntax = \"proto3\";\noption x = \"ab", "2:15", "not closed");
    refused("syntax = \"proto3\";\nmessage A { int32 a = 0x; }", "2:23", "invalid number");
    refused("syntax = \"proto3\";\nmessage A { map<float, string> m = 1; }", "2:17", "map's key");
    refused("syntax = \"proto3\"; enum E { Z = 0; A = 1; B = 1; }", NULL,
            "A and B of enum 'E' have the same number 1");
    refused("syntax = \"proto3\"; enum E { Z = 0; A = 1; Z = 2; }", NULL, "Z is defined twice");
    refused("syntax = \"proto3\"; enum E { Z = 0; A = 1; reserved 1; }", NULL, "reserved");
    refused("syntax = \"proto3\"; enum E { Z = 0; A = 1; reserved \"A\"; }", NULL, "reserved");
    refused("syntax = \"proto3\"; message A {} message A {}", "1:41", "already defined");
    refused("syntax = \"proto3\"; import \"nothere.proto\";", "", "nothere.proto");
    refused("syntax = \"proto3\"; message A { oneof o { } }", NULL, "at least one field");
    refused("syntax = \"proto3\"; message A { oneof o { repeated int32 a = 1; } }", NULL, "labels");
    refused("message A { optional group g = 1 {} }", NULL, "capital letter");
    refused("syntax = \"proto3\"; message A { group G = 1 {} }", NULL, "proto3");
    refused("message A { optional int32 a = 1 [default = \"x\"]; }", NULL, "does not fit");
    refused("message A { repeated int32 a = 1 [default = 1]; }", NULL, "repeated");
    refused("message A { optional float a = 1 [default = abc]; }", NULL, "does not fit");
    refused("message A { optional E e = 1 [default = THREE]; enum E { ONE = 1; } }", "1:22",
            "not a value of enum \"A.E\"");
    refused("message A { optional B b = 1 [default = X]; } message B {}", NULL, "messages");
    refused("message A { extensions 5 to 9; optional int32 a = 7; }", NULL, "extension range");
    refused("syntax = \"proto3\"; message A { } extend A { int32 x = 5; }", NULL,
            "extension number");
    refused("syntax = \"proto3\"; message A { extend Nope { int32 x = 5; } }", NULL, "not defined");
    refused("syntax = \"proto3\"; service S { rpc R (E) returns (E); } enum E { Z = 0; }", NULL,
            "not a message");
    refused("package p; package q;", NULL, "multiple package");
    refused("message A { optional int32 a = 1; } syntax = \"proto2\";", NULL, "first statement");
    refused("syntax = \"proto3\"; message A { int32 a = 1; } \x01", "1:47", "unexpected character");
    /* proto3 messages may not use proto2 enums. */
    schema_dep dep = {"e.proto", "enum E { A = 1; }", 17};
    schema *s = NULL;
    schema_error err;
    const char *t = "syntax = \"proto3\"; import \"e.proto\"; message M { E e = 1; }";
    ASSERT_EQ(schema_parse(SCHEMA_PROTOBUF, t, strlen(t), &dep, 1, &s, &err), -1);
    ASSERT_CONTAINS(err.message, "proto2 enum");
    /* An error in an import says which. */
    schema_dep bad = {"b.proto", "message {", 9};
    t = "import \"b.proto\";";
    ASSERT_EQ(schema_parse(SCHEMA_PROTOBUF, t, strlen(t), &bad, 1, &s, &err), -1);
    ASSERT_CONTAINS(err.message, "in import \"b.proto\"");
    ASSERT_STR_EQ(err.path, "1:9");
}

static void test_nesting_bound(void)
{
    char buf[8192];
    size_t k = (size_t)snprintf(buf, sizeof(buf), "syntax = \"proto3\";");
    for (int i = 0; i < SCHEMA_MAX_DEPTH + 5; i++)
        k += (size_t)snprintf(buf + k, sizeof(buf) - k, "message M%d {", i);
    for (int i = 0; i < SCHEMA_MAX_DEPTH + 5; i++)
        buf[k++] = '}';
    buf[k] = 0;
    refused(buf, NULL, "nested more than");
    /* An option's aggregate value is bounded too. */
    k = (size_t)snprintf(buf, sizeof(buf), "option (x) = ");
    for (int i = 0; i < 200; i++)
        buf[k++] = '{';
    buf[k] = 0;
    refused(buf, NULL, "nested more than");
}

/* Every prefix of valid files is parsed or refused, never crashes (ASan watches). */
static void test_truncated_text(void)
{
    const char *texts[] = {ORDER,
                           "package a.b; message M { required int32 a = 1 [default = -5]; "
                           "repeated group Line = 3 { optional int32 n = 1; } extensions 100 "
                           "to max; enum E { option allow_alias = true; ONE = 1; UNO = 1; } } "
                           "extend M { optional int32 x = 100; } option (o) = { a: [1] };"};
    for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
        size_t n = strlen(texts[t]);
        for (size_t i = 0; i < n; i++) {
            char *copy = malloc(i + 1);
            memcpy(copy, texts[t], i);
            copy[i] = 0;
            schema *s = NULL;
            schema_error err;
            if (schema_parse(SCHEMA_PROTOBUF, copy, i, NULL, 0, &s, &err) == 0)
                schema_free(s);
            else
                ASSERT(err.message[0] != 0);
            free(copy);
        }
    }
}

static void test_resolution(void)
{
    /* Innermost scope first: the inner B hides the outer one. */
    schema *s = parse("syntax = \"proto3\"; package p;\n"
                      "message B { string x = 1; }\n"
                      "message A { message B { int32 y = 1; } B b = 1; .p.B outer = 2; "
                      "p.B outer2 = 3; A.B inner = 4; }\n");
    schema_free(s);
    /* A name whose first part is found must resolve inside it (protobuf's rule). */
    refused("syntax = \"proto3\"; package p; message C { int32 z = 1; }\n"
            "message A { message C {} C.D d = 1; }",
            NULL, "\"C.D\" is not defined");
    /* Package prefixes: a.b.c can use a.b.X as X or b.X. */
    schema_dep dep = {"x.proto", "syntax = \"proto3\"; package a.b; message X { int32 v = 1; }", 0};
    dep.len = strlen(dep.text);
    s = parse_deps("syntax = \"proto3\"; package a.b.c; import \"x.proto\";\n"
                   "message M { X x1 = 1; b.X x2 = 2; a.b.X x3 = 3; .a.b.X x4 = 4; }",
                   &dep, 1);
    ASSERT_STR_EQ(schema_record_name(s), "a.b.c.M");
    schema_free(s);
    /* Transitive imports, public imports, and the well-known types. */
    schema_dep deps[2] = {
        {"base.proto", "syntax = \"proto3\"; package base; message Id { string v = 1; }", 0},
        {"mid.proto",
         "syntax = \"proto3\"; package mid; import public \"base.proto\";\n"
         "import \"google/protobuf/wrappers.proto\";\n"
         "message Ref { base.Id id = 1; google.protobuf.StringValue note = 2; }",
         0}};
    deps[0].len = strlen(deps[0].text);
    deps[1].len = strlen(deps[1].text);
    s = parse_deps(
        "syntax = \"proto3\"; import \"mid.proto\";\n"
        "import \"google/protobuf/any.proto\"; import \"google/protobuf/struct.proto\";\n"
        "import \"google/protobuf/duration.proto\"; import "
        "\"google/protobuf/empty.proto\";\n"
        "import weak \"google/protobuf/field_mask.proto\";\n"
        "message M { mid.Ref r = 1; base.Id id = 2; google.protobuf.Any any = 3;\n"
        "  google.protobuf.Struct st = 4; google.protobuf.Duration d = 5;\n"
        "  google.protobuf.Empty e = 6; google.protobuf.FieldMask fm = 7;\n"
        "  google.protobuf.Value v = 8; google.protobuf.ListValue l = 9; }",
        deps, 2);
    ASSERT_STR_EQ(schema_record_name(s), "M");
    schema_free(s);
    refused("syntax = \"proto3\"; import \"google/protobuf/timestamp.proto\";\n"
            "message M { Timestamp t = 1; }",
            "2:13", "not defined");
}

static void test_canonical(void)
{
    schema *a = parse(ORDER);
    const char *want = "syntax = \"proto3\";\n"
                       "package shop.v1;\n"
                       "import \"google/protobuf/timestamp.proto\";\n"
                       "option java_package = \"com.example.shop\";\n"
                       "message Order {\n"
                       "  string id = 1 [json_name = \"orderId\"];\n"
                       "  repeated Item items = 2;\n"
                       "  google.protobuf.Timestamp at = 3;\n"
                       "  Status status = 4;\n"
                       "  map<string, int64> totals = 5;\n"
                       "  oneof payment {\n"
                       "    string card = 6;\n"
                       "    Bank bank = 7;\n"
                       "  }\n"
                       "  optional double discount = 8 [deprecated = true];\n"
                       "  repeated int32 codes = 9 [packed = false];\n"
                       "  reserved 10, 12 to 14;\n"
                       "  reserved \"old\";\n"
                       "  message Item {\n"
                       "    string sku = 1;\n"
                       "    uint32 qty = 2;\n"
                       "  }\n"
                       "  message Bank {\n"
                       "    string iban = 1;\n"
                       "  }\n"
                       "  enum Status {\n"
                       "    UNKNOWN = 0;\n"
                       "    NEW = 1;\n"
                       "    PAID = 2;\n"
                       "  }\n"
                       "}\n"
                       "service Shop {\n"
                       "  rpc Place (Order) returns (Order);\n"
                       "}\n";
    ASSERT_STR_EQ(schema_canonical(a), want);
    /* The same file with other comments, layout and quotes has the same form. */
    schema *b = parse("syntax='proto3';package shop . v1;import 'google/protobuf/timestamp.proto';"
                      "option java_package='com.example.shop';message Order{string id=1[json_name"
                      "='orderId'];repeated Item items=2;/* c */google.protobuf.Timestamp at=3;"
                      "Status status=4;map < string , int64 > totals=5;oneof payment{string "
                      "card=6;Bank bank=7;}optional double discount=8[deprecated=true];repeated "
                      "int32 codes=9[packed=false];reserved 10,12 to 14;reserved \"\\157ld\";"
                      "message Item{string sku=1;uint32 qty=2;}message Bank{string iban=1;}enum "
                      "Status{UNKNOWN=0;NEW=1;PAID=2;}}service Shop{rpc Place(Order)returns"
                      "(Order);}");
    ASSERT_STR_EQ(schema_canonical(b), want);
    schema_free(b);
    schema_free(a);
    /* Negative numbers, aggregates and escapes. */
    a = parse("message A { optional int32 a = 1 [default = -1, (x) = { a: 1 }]; }\n"
              "option (y) = { b { c: 'q\\x01' } };");
    ASSERT_STR_EQ(schema_canonical(a), "message A {\n"
                                       "  optional int32 a = 1 [default = -1, (x) = { a: 1 }];\n"
                                       "}\n"
                                       "option (y) = { b { c: \"q\\001\" } };\n");
    schema_free(a);
}

/* ---- binary payloads ---- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t k = 0;
    while (v >= 0x80) {
        p[k++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[k++] = (uint8_t)v;
    return k;
}

static int validate(const schema *s, const uint8_t *p, size_t n, schema_error *err)
{
    return schema_validate(s, p, n, err);
}

static void test_validate_binary(void)
{
    schema *s = parse(ORDER);
    /* Order{id:"o1", items:[{sku:"a",qty:2}], status:PAID, totals:{"x":5}, card:"c",
     * codes:[1,2] unpacked, at:{seconds:1}} with the index [0]. */
    uint8_t good[] = {0x00,                                    /* message indexes: [0] */
                      0x0a, 0x02, 'o',  '1',                   /* id */
                      0x12, 0x05, 0x0a, 0x01, 'a', 0x10, 0x02, /* items */
                      0x1a, 0x02, 0x08, 0x01,                  /* at */
                      0x20, 0x02,                              /* status */
                      0x2a, 0x05, 0x0a, 0x01, 'x', 0x10, 0x05, /* totals */
                      0x32, 0x01, 'c',                         /* card */
                      0x41, 0,    0,    0,    0,   0,    0,    0xf0, 0x3f, /* discount 1.0 */
                      0x48, 0x01, 0x48, 0x02,                              /* codes unpacked */
                      0x4a, 0x02, 0x03, 0x04,                              /* codes packed */
                      0x98, 0x06, 0x07};                                   /* unknown field 99 */
    schema_error err;
    ASSERT_EQ(validate(s, good, sizeof(good), &err), 0);
    /* Truncated at every byte: refused or (at a field boundary) accepted, never a crash. */
    int accepted = 0;
    for (size_t i = 0; i < sizeof(good); i++) {
        uint8_t *copy = malloc(i ? i : 1);
        memcpy(copy, good, i);
        if (validate(s, copy, i, &err) == 0)
            accepted++;
        free(copy);
    }
    ASSERT(accepted > 0 && accepted < (int)sizeof(good));
    uint8_t cut[] = {0x00, 0x0a, 0x05, 'o', '1'};
    ASSERT_EQ(validate(s, cut, sizeof(cut), &err), -1);
    ASSERT_STR_EQ(err.rule, "truncated");
    /* The wrong wire type for a string: varint. */
    uint8_t wt[] = {0x00, 0x08, 0x01};
    ASSERT_EQ(validate(s, wt, sizeof(wt), &err), -1);
    ASSERT_STR_EQ(err.rule, "wire-type");
    ASSERT_STR_EQ(err.path, "/id");
    /* Inside a nested message: items[].qty as length-delimited. */
    uint8_t nested[] = {0x00, 0x12, 0x03, 0x12, 0x01, 0x00};
    ASSERT_EQ(validate(s, nested, sizeof(nested), &err), -1);
    ASSERT_STR_EQ(err.path, "/items/qty");
    /* Invalid UTF-8 in a proto3 string. */
    uint8_t bad_utf8[] = {0x00, 0x0a, 0x02, 0xc3, 0x28};
    ASSERT_EQ(validate(s, bad_utf8, sizeof(bad_utf8), &err), -1);
    ASSERT_STR_EQ(err.rule, "utf8");
    /* A varint of 11 bytes, wire types 6 and 7, field number 0, a stray end group. */
    uint8_t longv[] = {0x00, 0x20, 0x80, 0x80, 0x80, 0x80, 0x80,
                       0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    ASSERT_EQ(validate(s, longv, sizeof(longv), &err), -1);
    ASSERT_STR_EQ(err.rule, "varint");
    uint8_t w6[] = {0x00, 0x0e};
    ASSERT_EQ(validate(s, w6, sizeof(w6), &err), -1);
    uint8_t f0[] = {0x00, 0x00};
    ASSERT_EQ(validate(s, f0, sizeof(f0), &err), -1);
    uint8_t eg[] = {0x00, 0x0c};
    ASSERT_EQ(validate(s, eg, sizeof(eg), &err), -1);
    /* A packed fixed run that is not whole elements; a length past the end. */
    uint8_t trail[] = {0x00, 0x0a, 0x09, 'a'};
    ASSERT_EQ(validate(s, trail, sizeof(trail), &err), -1);
    /* Message indexes: [1] is not a top-level message; [0, 1] is Order.Bank. */
    uint8_t idx1[] = {0x02, 0x02};
    ASSERT_EQ(validate(s, idx1, sizeof(idx1), &err), -1);
    ASSERT_STR_EQ(err.rule, "message-index");
    uint8_t bank[] = {0x04, 0x00, 0x02, 0x0a, 0x01, 'I'};
    ASSERT_EQ(validate(s, bank, sizeof(bank), &err), 0);
    uint8_t bank_bad[] = {0x04, 0x00, 0x02, 0x08, 0x01};
    ASSERT_EQ(validate(s, bank_bad, sizeof(bank_bad), &err), -1);
    uint8_t none[] = {0};
    ASSERT_EQ(validate(s, none, 0, &err), -1);
    ASSERT_EQ(validate(s, none, 1, &err), 0); /* an empty Order */
    schema_free(s);

    /* proto2 groups, and unknown groups skipped. */
    s = parse("message M { optional int32 a = 1; repeated group G = 2 { optional string s = 1; "
              "} }");
    uint8_t g[] = {0x00, 0x13, 0x0a, 0x01, 0xff, 0x14, 0x08, 0x05, 0x1b, 0x08, 0x01, 0x1c};
    ASSERT_EQ(validate(s, g, sizeof(g), &err), 0); /* proto2 strings are not checked */
    uint8_t g_bad[] = {0x00, 0x13, 0x0a, 0x01, 'x', 0x1c};
    ASSERT_EQ(validate(s, g_bad, sizeof(g_bad), &err), -1);
    ASSERT_STR_EQ(err.rule, "group");
    uint8_t g_open[] = {0x00, 0x13, 0x0a, 0x01, 'x'};
    ASSERT_EQ(validate(s, g_open, sizeof(g_open), &err), -1);
    /* proto2 required fields must be present, in groups too. */
    schema *r = parse("message Q { required int32 a = 1; optional group G = 2 { required "
                      "string s = 1; } }");
    uint8_t q_ok[] = {0x00, 0x08, 0x01, 0x13, 0x0a, 0x00, 0x14};
    ASSERT_EQ(validate(r, q_ok, sizeof(q_ok), &err), 0);
    uint8_t q_missing[] = {0x00, 0x13, 0x0a, 0x00, 0x14};
    ASSERT_EQ(validate(r, q_missing, sizeof(q_missing), &err), -1);
    ASSERT_STR_EQ(err.rule, "required");
    uint8_t q_inner[] = {0x00, 0x08, 0x01, 0x13, 0x14};
    ASSERT_EQ(validate(r, q_inner, sizeof(q_inner), &err), -1);
    ASSERT_STR_EQ(err.path, "/g");
    schema_free(r);
    uint8_t g_wt[] = {0x00, 0x12, 0x00};
    ASSERT_EQ(validate(s, g_wt, sizeof(g_wt), &err), -1);
    schema_free(s);

    /* Nesting deeper than the bound is refused, not recursed into. */
    s = parse("syntax = \"proto3\"; message R { R r = 1; }");
    /* Built from the inside out: each level is a tag, the length of what it holds, and it. */
    uint8_t deep[1024], tmp[1024];
    size_t k = 0;
    for (int i = 0; i < 100; i++) {
        uint8_t head[12];
        size_t h = 0;
        head[h++] = 0x0a;
        h += put_varint(head + h, k);
        memcpy(tmp, head, h);
        memcpy(tmp + h, deep, k);
        k += h;
        memcpy(deep, tmp, k);
    }
    memmove(deep + 1, deep, k);
    deep[0] = 0;
    k++;
    ASSERT_EQ(validate(s, deep, k, &err), -1);
    ASSERT_STR_EQ(err.rule, "depth");
    schema_free(s);
}

/* ---- compatibility ---- */

/* Whether `reader` can read `writer`; the messages joined in *out (static storage). */
static bool can_read(const char *reader, const char *writer, char *out, size_t n)
{
    schema *r = parse(reader), *w = parse(writer);
    schema_msgs m = {0};
    bool ok = schema_can_read(r, w, &m);
    snprintf(out, n, "%s", m.text ? m.text : "");
    if (ok)
        ASSERT_EQ(m.count, 0);
    else
        ASSERT(m.count > 0);
    schema_msgs_free(&m);
    schema_free(r);
    schema_free(w);
    return ok;
}

#define P3 "syntax = \"proto3\"; package p; "

static void test_compat_matrix(void)
{
    char m[4096];
    const char *base = P3 "message Order { string id = 1; int32 qty = 2; Item item = 3; "
                          "message Item { string sku = 1; } }";
    ASSERT(can_read(base, base, m, sizeof(m)));
    /* Fields added, removed, renamed: compatible. */
    ASSERT(can_read(P3 "message Order { string id = 1; int32 qty = 2; Item item = 3; "
                       "string note = 4; message Item { string sku = 1; } }",
                    base, m, sizeof(m)));
    ASSERT(can_read(P3 "message Order { string id = 1; Item item = 3; "
                       "message Item { string sku = 1; } }",
                    base, m, sizeof(m)));
    ASSERT(can_read(P3 "message Order { string ident = 1; int32 quantity = 2; Item item = 3; "
                       "message Item { string sku = 1; } }",
                    base, m, sizeof(m)));
    /* Renumbered: the old number is removed and a new one added, both compatible; a number
     * that now means another kind of field is not. */
    ASSERT(can_read(P3 "message Order { string id = 1; int32 qty = 5; Item item = 3; "
                       "message Item { string sku = 1; } }",
                    base, m, sizeof(m)));
    ASSERT(!can_read(P3 "message Order { string id = 1; Item qty = 2; Item item = 3; "
                        "message Item { string sku = 1; } }",
                     base, m, sizeof(m)));
    ASSERT_STR_EQ(m, "{errorType:\"FIELD_KIND_CHANGED\", description:\"The type of a field at "
                     "path '#/Order/2' in the new schema does not match the old schema\"}");
    /* Scalar changes within a wire-compatible group are compatible, across them not. */
    static const char *const groups[][5] = {
        {"int32", "int64", "uint32", "uint64", "bool"},
        {"sint32", "sint64", NULL, NULL, NULL},
        {"string", "bytes", NULL, NULL, NULL},
        {"fixed32", "sfixed32", NULL, NULL, NULL},
        {"fixed64", "sfixed64", NULL, NULL, NULL},
        {"float", NULL, NULL, NULL, NULL},
        {"double", NULL, NULL, NULL, NULL},
    };
    size_t ng = sizeof(groups) / sizeof(groups[0]);
    for (size_t g1 = 0; g1 < ng; g1++)
        for (size_t i = 0; i < 5 && groups[g1][i]; i++)
            for (size_t g2 = 0; g2 < ng; g2++)
                for (size_t j = 0; j < 5 && groups[g2][j]; j++) {
                    char a[256], b[256];
                    snprintf(a, sizeof(a), P3 "message M { %s f = 1; }", groups[g1][i]);
                    snprintf(b, sizeof(b), P3 "message M { %s f = 1; }", groups[g2][j]);
                    bool ok = can_read(a, b, m, sizeof(m));
                    if (ok != (g1 == g2))
                        TEST_FAIL_("%s read as %s: %d", groups[g2][j], groups[g1][i], ok);
                    if (!ok)
                        ASSERT_CONTAINS(m, "FIELD_SCALAR_KIND_CHANGED");
                }
    /* An enum counts as an integer. */
    ASSERT(can_read(P3 "message M { E f = 1; } enum E { Z = 0; }", P3 "message M { int32 f = 1; }",
                    m, sizeof(m)));
    /* Labels: numeric label changes are not compatible, string ones are; an implicit proto3
     * label compares equal to any (as Confluent). */
    ASSERT(!can_read("package p; message M { repeated int32 f = 1; }",
                     "package p; message M { optional int32 f = 1; }", m, sizeof(m)));
    ASSERT_CONTAINS(m, "FIELD_NUMERIC_LABEL_CHANGED");
    ASSERT_CONTAINS(m, "'#/M/1'");
    ASSERT(can_read("package p; message M { repeated string f = 1; }",
                    "package p; message M { optional string f = 1; }", m, sizeof(m)));
    ASSERT(can_read(P3 "message M { repeated int32 f = 1; }", P3 "message M { int32 f = 1; }", m,
                    sizeof(m)));
    /* proto2 required fields added or removed. */
    ASSERT(!can_read("message M { optional int32 a = 1; required int32 b = 2; }",
                     "message M { optional int32 a = 1; }", m, sizeof(m)));
    ASSERT_STR_EQ(m, "{errorType:\"REQUIRED_FIELD_ADDED\", description:\"A required field  at "
                     "path '#/M/2' in the new schema is missing in the old schema\"}");
    ASSERT(!can_read("message M { optional int32 a = 1; }",
                     "message M { optional int32 a = 1; required int32 b = 2; }", m, sizeof(m)));
    ASSERT_CONTAINS(m, "REQUIRED_FIELD_REMOVED");
    /* Message removed; package changed; message added is compatible. */
    ASSERT(!can_read(P3 "message A { int32 a = 1; }",
                     P3 "message A { int32 a = 1; } message B { int32 b = 1; }", m, sizeof(m)));
    ASSERT_STR_EQ(m, "{errorType:\"MESSAGE_REMOVED\", description:\"The new schema is missing a "
                     "MESSAGE type at path '#/B' in the old schema\"}");
    ASSERT(can_read(P3 "message A { int32 a = 1; } message B { int32 b = 1; }",
                    P3 "message A { int32 a = 1; }", m, sizeof(m)));
    ASSERT(!can_read("syntax = \"proto3\"; package q; message A { int32 a = 1; }",
                     P3 "message A { int32 a = 1; }", m, sizeof(m)));
    ASSERT_STR_EQ(m, "{errorType:\"PACKAGE_CHANGED\", description:\"The package at '#/' in the "
                     "new schema does not match the package in the old schema\"}");
    /* A message field's type renamed, or changed incompatibly inside. */
    ASSERT(!can_read(P3 "message A { X x = 1; } message X { int32 v = 1; } message Y {}",
                     P3 "message A { Y x = 1; } message X { int32 v = 1; } message Y {}", m,
                     sizeof(m)));
    ASSERT_CONTAINS(m, "FIELD_NAMED_TYPE_CHANGED");
    ASSERT(!can_read(P3 "message A { X x = 1; } message X { string v = 1; }",
                     P3 "message A { X x = 1; } message X { int32 v = 1; }", m, sizeof(m)));
    ASSERT_CONTAINS(m, "'#/X/1'");
    ASSERT_CONTAINS(m, "FIELD_NAMED_TYPE_CHANGED");
    /* A chain of 300 distinct message types each holding the next is compared to its end
     * (a bound of 256 levels once called it incompatible with itself). */
    {
        size_t cap = 64 * 1024, k = 0;
        char *chain = malloc(cap);
        k += (size_t)snprintf(chain, cap, P3);
        for (int i = 0; i < 300; i++)
            k += (size_t)snprintf(chain + k, cap - k, "message C%d { C%d next = 1; int32 v = 2; }",
                                  i, (i + 1) % 300);
        ASSERT(can_read(chain, chain, m, sizeof(m)));
        free(chain);
    }
    /* Self-reference ends. */
    ASSERT(can_read(P3 "message T { T next = 1; int64 v = 2; }",
                    P3 "message T { T next = 1; int32 v = 2; }", m, sizeof(m)));
    /* Maps: value types compared. */
    ASSERT(!can_read(P3 "message M { map<string, string> m = 1; }",
                     P3 "message M { map<string, int32> m = 1; }", m, sizeof(m)));
    ASSERT(!can_read(P3 "message M { map<string, int32> m = 1; }", P3 "message M { int32 m = 1; }",
                     m, sizeof(m)));
    ASSERT_CONTAINS(m, "FIELD_KIND_CHANGED");
}

static void test_compat_oneof(void)
{
    char m[4096];
    const char *w = P3 "message M { oneof o { int32 a = 1; string b = 2; } int32 c = 3; "
                       "int32 d = 4; }";
    /* A oneof added with a new field, a member added: compatible. */
    ASSERT(can_read(P3 "message M { oneof o { int32 a = 1; string b = 2; string e = 5; } "
                       "int32 c = 3; int32 d = 4; }",
                    w, m, sizeof(m)));
    /* A member removed while the oneof remains. */
    ASSERT(!can_read(P3 "message M { oneof o { int32 a = 1; } int32 c = 3; int32 d = 4; }", w, m,
                     sizeof(m)));
    ASSERT_STR_EQ(m, "{errorType:\"ONEOF_FIELD_REMOVED\", description:\"The new schema is "
                     "missing a oneof field at path '#/M/o/2' in the old schema\"}");
    /* The whole oneof removed: compatible. */
    ASSERT(can_read(P3 "message M { int32 c = 3; int32 d = 4; }", w, m, sizeof(m)));
    /* One top-level field moved into the existing oneof, two into a new one. */
    ASSERT(!can_read(P3 "message M { oneof o { int32 a = 1; string b = 2; int32 c = 3; } "
                        "int32 d = 4; }",
                     w, m, sizeof(m)));
    ASSERT_CONTAINS(m, "FIELD_MOVED_TO_EXISTING_ONEOF");
    ASSERT_CONTAINS(m, "'#/M/o'");
    ASSERT(!can_read(P3 "message M { oneof o { int32 a = 1; string b = 2; } oneof n { int32 c = "
                        "3; int32 d = 4; } }",
                     w, m, sizeof(m)));
    ASSERT_CONTAINS(m, "MULTIPLE_FIELDS_MOVED_TO_ONEOF");
    /* A single field moved into a new oneof, and a member moved out: compatible. */
    ASSERT(can_read(P3 "message M { oneof o { int32 a = 1; string b = 2; } oneof n { int32 c = "
                       "3; } int32 d = 4; }",
                    w, m, sizeof(m)));
    ASSERT(can_read(P3 "message M { oneof o { int32 a = 1; } string b = 2; int32 c = 3; "
                       "int32 d = 4; }",
                    w, m, sizeof(m)));
    /* A member's type changed inside the oneof is reported at its oneof path. */
    ASSERT(!can_read(P3 "message M { oneof o { int32 a = 1; double b = 2; } int32 c = 3; "
                        "int32 d = 4; }",
                     w, m, sizeof(m)));
    ASSERT_CONTAINS(m, "'#/M/o/2'");
}

/* ---- JSON payloads ---- */

static int vjson(const schema *s, const char *json, schema_error *err)
{
    return schema_validate_json(s, json, strlen(json), err);
}

static void test_validate_json(void)
{
    schema *s = parse(ORDER);
    schema_error err;
    ASSERT_EQ(vjson(s,
                    "{\"orderId\": \"o1\", \"items\": [{\"sku\": \"a\", \"qty\": 2}], "
                    "\"at\": \"2024-01-02T03:04:05Z\", \"status\": \"PAID\", "
                    "\"totals\": {\"x\": \"5\", \"y\": 7}, \"card\": \"c\", "
                    "\"discount\": \"NaN\", \"codes\": [1, \"2\", 3.0]}",
                    &err),
              0);
    ASSERT_EQ(vjson(s, "{\"id\": \"o1\", \"status\": 7, \"bank\": {\"iban\": \"x\"}}", &err), 0);
    ASSERT_EQ(vjson(s, "{}", &err), 0);
    ASSERT_EQ(vjson(s, "{\"id\": null, \"items\": null}", &err), 0);
    /* Wrong types, with the pointer of the value. */
    ASSERT_EQ(vjson(s, "{\"id\": 5}", &err), -1);
    ASSERT_STR_EQ(err.path, "/id");
    ASSERT_EQ(vjson(s, "{\"items\": [{\"sku\": \"a\"}, {\"qty\": -1}]}", &err), -1);
    ASSERT_STR_EQ(err.path, "/items/1/qty");
    ASSERT_EQ(vjson(s, "{\"items\": [{\"qty\": 4294967296}]}", &err), -1);
    ASSERT_EQ(vjson(s, "{\"codes\": [1.5]}", &err), -1);
    ASSERT_EQ(vjson(s, "{\"codes\": [\"99999999999\"]}", &err), -1);
    ASSERT_EQ(vjson(s, "{\"codes\": 1}", &err), -1);
    ASSERT_EQ(vjson(s, "{\"status\": \"GONE\"}", &err), -1);
    ASSERT_STR_EQ(err.rule, "enum");
    ASSERT_EQ(vjson(s, "{\"totals\": {\"x\": \"a\"}}", &err), -1);
    ASSERT_STR_EQ(err.path, "/totals/x");
    ASSERT_EQ(vjson(s, "{\"nope\": 1}", &err), -1);
    ASSERT_STR_EQ(err.rule, "unknown");
    ASSERT_EQ(vjson(s, "{\"card\": \"c\", \"bank\": {}}", &err), -1);
    ASSERT_STR_EQ(err.rule, "oneof");
    ASSERT_EQ(vjson(s, "{\"at\": 5}", &err), -1);
    ASSERT_EQ(vjson(s, "{\"discount\": \"x\"}", &err), -1);
    ASSERT_EQ(vjson(s, "[]", &err), -1);
    ASSERT_EQ(vjson(s, "{\"id\": ", &err), -1);
    ASSERT_STR_EQ(err.rule, "json");
    schema_free(s);
    /* 64-bit integers, bytes, bools, map keys, closed proto2 enums, wrappers. */
    s = parse("syntax = \"proto2\"; import \"google/protobuf/wrappers.proto\";\n"
              "message M { optional int64 a = 1; optional uint64 b = 2; optional bytes c = 3;\n"
              "  optional bool d = 4; map<int32, string> e = 5; optional E f = 6;\n"
              "  optional google.protobuf.Int32Value g = 7; map<bool, bool> h = 8;\n"
              "  enum E { X = 1; } }");
    ASSERT_EQ(vjson(s,
                    "{\"a\": \"-9223372036854775808\", \"b\": \"18446744073709551615\", "
                    "\"c\": \"aGk=\", \"d\": true, \"e\": {\"-1\": \"x\"}, \"f\": 1, "
                    "\"g\": 5, \"h\": {\"true\": false}}",
                    &err),
              0);
    ASSERT_EQ(vjson(s, "{\"a\": \"9223372036854775808\"}", &err), -1);
    ASSERT_EQ(vjson(s, "{\"b\": \"-1\"}", &err), -1);
    ASSERT_EQ(vjson(s, "{\"c\": \"a$\"}", &err), -1);
    ASSERT_EQ(vjson(s, "{\"d\": 1}", &err), -1);
    ASSERT_EQ(vjson(s, "{\"e\": {\"x\": \"y\"}}", &err), -1);
    ASSERT_EQ(vjson(s, "{\"f\": 2}", &err), -1);
    ASSERT_EQ(vjson(s, "{\"g\": \"x\"}", &err), -1);
    ASSERT_EQ(vjson(s, "{\"h\": {\"yes\": true}}", &err), -1);
    schema_free(s);
    /* Depth is bounded. */
    s = parse("syntax = \"proto3\"; message R { R r = 1; }");
    char deep[2048];
    size_t k = 0;
    for (int i = 0; i < 100; i++)
        k += (size_t)snprintf(deep + k, sizeof(deep) - k, "{\"r\":");
    k += (size_t)snprintf(deep + k, sizeof(deep) - k, "{}");
    for (int i = 0; i < 100; i++)
        deep[k++] = '}';
    deep[k] = 0;
    ASSERT_EQ(vjson(s, deep, &err), -1);
    ASSERT_STR_EQ(err.rule, "depth");
    schema_free(s);
}

/* A schema given as a base64-encoded FileDescriptorProto, as confluent-kafka's Python
 * serializer registers it, reads as the .proto file it describes. The descriptors were made
 * with python3-protobuf's descriptor_pb2: a proto3 file with a map, a oneof, a proto3 optional
 * field, an import, reserved ranges and names, a negative enum value and a streaming rpc; a
 * proto2 file with defaults, a group, an extension range and an extension. */
static void test_descriptor_form(void)
{
    static const char shop[] =
        "CgpzaG9wLnByb3RvEgRzaG9wGh9nb29nbGUvcHJvdG9idWYvdGltZXN0YW1wLnByb3RvIpYCCgVPcmRl"
        "chIOCgJpZBgBIAEoCVICaWQSJwoGdG90YWxzGAIgAygLMhcuc2hvcC5PcmRlci5Ub3RhbHNFbnRyeRIO"
        "CgRjYXJkGAMgASgJSAASDgoEaWJhbhgEIAEoCUgAEhEKBG5vdGUYBSABKAlIAYgBARImCgJhdBgGIAEo"
        "CzIaLmdvb2dsZS5wcm90b2J1Zi5UaW1lc3RhbXASEQoFY29kZXMYByADKAVCAhAAEhgKAnN0GAggASgO"
        "Mgwuc2hvcC5TdGF0dXMaLQoLVG90YWxzRW50cnkSCwoDa2V5GAEgASgJEg0KBXZhbHVlGAIgASgDOgI4"
        "AUIJCgdwYXltZW50QgcKBV9ub3RlSgQIChANUgNvbGQqJwoGU3RhdHVzEgsKB1VOS05PV04QABIQCgNO"
        "RUcQ////////////ATIrCgRTaG9wEiMKBVBsYWNlEgsuc2hvcC5PcmRlchoLLnNob3AuT3JkZXIwAWIG"
        "cHJvdG8z";
    static const char g[] =
        "CgdnLnByb3RvEgFnIlkKAU0SDQoBYRgBIAIoBToCLTUSDwoBcxgCIAEoCToEYSJiChIXCgRsaW5lGAMg"
        "AygKMgkuZy5NLkxpbmUaEQoETGluZRIJCgFuGAEgASgFKggIZBCAgICAAjoPCgF4EgQuZy5NGGQgASgF";
    schema *s = parse(shop);
    ASSERT_STR_EQ(schema_record_name(s), "shop.Order");
    ASSERT_STR_EQ(schema_canonical(s), "syntax = \"proto3\";\n"
                                       "package shop;\n"
                                       "import \"google/protobuf/timestamp.proto\";\n"
                                       "message Order {\n"
                                       "  string id = 1;\n"
                                       "  map<string, int64> totals = 2;\n"
                                       "  oneof payment {\n"
                                       "    string card = 3;\n"
                                       "    string iban = 4;\n"
                                       "  }\n"
                                       "  optional string note = 5;\n"
                                       "  .google.protobuf.Timestamp at = 6;\n"
                                       "  repeated int32 codes = 7 [packed = false];\n"
                                       "  .shop.Status st = 8;\n"
                                       "  reserved 10 to 12;\n"
                                       "  reserved \"old\";\n"
                                       "}\n"
                                       "enum Status {\n"
                                       "  UNKNOWN = 0;\n"
                                       "  NEG = -1;\n"
                                       "}\n"
                                       "service Shop {\n"
                                       "  rpc Place (.shop.Order) returns (stream .shop.Order);\n"
                                       "}\n");
    /* Its payloads validate as the text's would: the map entry and the oneof. */
    uint8_t p[] = {0x00, 0x12, 0x05, 0x0a, 0x01, 'x', 0x10, 0x05, 0x1a, 0x01, 'c'};
    schema_error err;
    ASSERT_EQ(schema_validate(s, p, sizeof(p), &err), 0);
    schema_free(s);
    s = parse(g);
    ASSERT_STR_EQ(schema_canonical(s), "syntax = \"proto2\";\n"
                                       "package g;\n"
                                       "message M {\n"
                                       "  required int32 a = 1 [default = -5];\n"
                                       "  optional string s = 2 [default = \"a\\\"b\\n\"];\n"
                                       "  repeated group Line = 3 {\n"
                                       "    optional int32 n = 1;\n"
                                       "  }\n"
                                       "  extensions 100 to max;\n"
                                       "}\n"
                                       "extend .g.M {\n"
                                       "  optional int32 x = 100;\n"
                                       "}\n");
    schema_free(s);
    /* A descriptor the fuzzer found: a nested type without a name, looked up as a group's body
     * (pointer arithmetic on an absent name was undefined behaviour). */
    static const char nameless[] =
        "CgdnLnByb3RvEgFnIlkKAU0SDQoBYRgBIAIoBToCLTUSDwoBcxgCIAEoCToEYSJiChIXCgRsaW5lGAMgAygKEgk"
        "uZy5NLkxpbmUaEQEouTGlZRIJCgFuGAEgASgFKggIZBCAgICAAPjgCoF4EgQuZy5NGGQgASgF";
    schema *t = NULL;
    if (schema_parse(SCHEMA_PROTOBUF, nameless, strlen(nameless), NULL, 0, &t, &err) == 0)
        schema_free(t);
    /* Base64 that is not a descriptor is refused, and every prefix of one never crashes. */
    refused("AAAA", "", "FileDescriptorProto");
    for (size_t n = 4; n < sizeof(shop) - 1; n += 4) {
        t = NULL;
        if (schema_parse(SCHEMA_PROTOBUF, shop, n, NULL, 0, &t, &err) == 0)
            schema_free(t);
    }
}

TEST_MAIN(TEST(test_parse_constructs), TEST(test_parse_errors), TEST(test_nesting_bound),
          TEST(test_truncated_text), TEST(test_resolution), TEST(test_canonical),
          TEST(test_validate_binary), TEST(test_compat_matrix), TEST(test_compat_oneof),
          TEST(test_validate_json), TEST(test_descriptor_form))
