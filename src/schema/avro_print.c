/*
 * avro_print.c: the canonical form of an Avro schema, which is what Confluent's registry
 * answers and compares (AvroSchema.canonicalString(), that is Java's Schema.toString() with
 * the references' top-level types known beforehand): compact JSON; a primitive without
 * properties as its name; each named type defined in full where it is first printed and by
 * name afterwards (the short name when its namespace is the enclosing one); attributes in
 * Java's order:
 *   record: type, name, namespace, doc, fields, properties, aliases
 *   field:  name, type, doc, default, order (unless ascending), aliases, properties
 *   enum:   type, name, namespace, doc, symbols, default, properties, aliases
 *   fixed:  type, name, namespace, doc, size, properties, aliases
 *   array/map: type, items/values, properties; a primitive with properties: type, properties
 * "namespace" is printed only where it differs from the enclosing one ("" when a type without
 * one is declared inside one that has one). JSON values (defaults, properties) are printed as
 * Jackson prints them: reals as Java's Double.toString, strings with the short escapes.
 *
 * The av_buf JSON writer here is shared with the binary decoder's JSON output (avro_binary.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/avro_int.h"

void av_buf_put(av_buf *b, const void *p, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *t = realloc(b->p, cap);
        if (!t) {
            b->failed = true;
            return;
        }
        b->p = t;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
}

void av_buf_puts(av_buf *b, const char *s)
{
    av_buf_put(b, s, strlen(s));
}

void av_buf_putc(av_buf *b, char c)
{
    av_buf_put(b, &c, 1);
}

void av_buf_json_str(av_buf *b, const char *p, size_t n)
{
    av_buf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        av_buf_put(b, p + run, i - run);
        run = i + 1;
        char e[8];
        switch (ch) {
        case '"':
            av_buf_puts(b, "\\\"");
            break;
        case '\\':
            av_buf_puts(b, "\\\\");
            break;
        case '\n':
            av_buf_puts(b, "\\n");
            break;
        case '\r':
            av_buf_puts(b, "\\r");
            break;
        case '\t':
            av_buf_puts(b, "\\t");
            break;
        case '\b':
            av_buf_puts(b, "\\b");
            break;
        case '\f':
            av_buf_puts(b, "\\f");
            break;
        default:
            snprintf(e, sizeof(e), "\\u%04X", ch);
            av_buf_puts(b, e);
        }
    }
    av_buf_put(b, p + run, n - run);
    av_buf_putc(b, '"');
}

void av_buf_java_double(av_buf *b, double d)
{
    if (isnan(d)) {
        av_buf_puts(b, "NaN");
        return;
    }
    if (isinf(d)) {
        av_buf_puts(b, d < 0 ? "-Infinity" : "Infinity");
        return;
    }
    if (d == 0) {
        av_buf_puts(b, signbit(d) ? "-0.0" : "0.0");
        return;
    }
    /* The shortest decimal that reads back as d, as digits and an exponent. */
    char t[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(t, sizeof(t), "%.*e", prec - 1, d);
        if (strtod(t, NULL) == d)
            break;
    }
    const char *q = t;
    bool neg = *q == '-';
    if (neg)
        q++;
    char digits[24];
    size_t nd = 0;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9' && nd < sizeof(digits) - 1)
            digits[nd++] = *q;
    int exp = *q == 'e' ? atoi(q + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = 0;
    char out[64];
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    double a = fabs(d);
    if (a >= 1e-3 && a < 1e7) {
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++)
                out[o++] = (size_t)i < nd ? digits[i] : '0';
            out[o++] = '.';
            if ((size_t)exp + 1 < nd)
                for (size_t i = (size_t)exp + 1; i < nd; i++)
                    out[o++] = digits[i];
            else
                out[o++] = '0';
        } else {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -exp - 1; i++)
                out[o++] = '0';
            for (size_t i = 0; i < nd; i++)
                out[o++] = digits[i];
        }
        out[o] = 0;
    } else {
        out[o++] = digits[0];
        out[o++] = '.';
        if (nd > 1)
            for (size_t i = 1; i < nd; i++)
                out[o++] = digits[i];
        else
            out[o++] = '0';
        snprintf(out + o, sizeof(out) - o, "E%d", exp);
    }
    av_buf_puts(b, out);
}

void av_buf_json(av_buf *b, const json_t *v)
{
    char t[32];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        av_buf_putc(b, '{');
        const char *k;
        json_t *e;
        bool first = true;
        json_object_foreach((json_t *)v, k, e)
        {
            if (!first)
                av_buf_putc(b, ',');
            first = false;
            av_buf_json_str(b, k, strlen(k));
            av_buf_putc(b, ':');
            av_buf_json(b, e);
        }
        av_buf_putc(b, '}');
        break;
    }
    case JSON_ARRAY:
        av_buf_putc(b, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                av_buf_putc(b, ',');
            av_buf_json(b, json_array_get(v, i));
        }
        av_buf_putc(b, ']');
        break;
    case JSON_STRING:
        av_buf_json_str(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        snprintf(t, sizeof(t), "%lld", (long long)json_integer_value(v));
        av_buf_puts(b, t);
        break;
    case JSON_REAL:
        av_buf_java_double(b, json_real_value(v));
        break;
    case JSON_TRUE:
        av_buf_puts(b, "true");
        break;
    case JSON_FALSE:
        av_buf_puts(b, "false");
        break;
    default:
        av_buf_puts(b, "null");
    }
}

typedef struct printer {
    av_buf *b;
    bool *seen; /* by node id: named types already printed */
} printer;

static bool seen(printer *p, const av_node *n)
{
    if (n->from_dep || p->seen[n->id])
        return true;
    p->seen[n->id] = true;
    return false;
}

static void key(av_buf *b, const char *k)
{
    av_buf_putc(b, ',');
    av_buf_json_str(b, k, strlen(k));
    av_buf_putc(b, ':');
}

static void str_member(av_buf *b, const char *k, const char *v)
{
    if (!v)
        return;
    key(b, k);
    av_buf_json_str(b, v, strlen(v));
}

/* The properties, each as ,"key":value. */
static void props(av_buf *b, const json_t *pr)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)pr, k, v)
    {
        key(b, k);
        av_buf_json(b, v);
    }
}

/* An alias relative to a namespace, as Java's Name.getQualified(space). */
static const char *qualified(const char *full, const char *space)
{
    const char *dot = strrchr(full, '.');
    if (!dot)
        return full;
    size_t n = (size_t)(dot - full);
    if (space && strlen(space) == n && !strncmp(full, space, n))
        return dot + 1;
    return full;
}

static void aliases(av_buf *b, char **a, size_t n, const char *space, bool named)
{
    if (!n)
        return;
    key(b, "aliases");
    av_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            av_buf_putc(b, ',');
        const char *s = named ? qualified(a[i], space) : a[i];
        av_buf_json_str(b, s, strlen(s));
    }
    av_buf_putc(b, ']');
}

static void print_node(printer *p, const av_node *n, const char *space);

static void print_field(printer *p, const av_field *f, const char *space)
{
    av_buf *b = p->b;
    av_buf_puts(b, "{\"name\":");
    av_buf_json_str(b, f->name, strlen(f->name));
    key(b, "type");
    print_node(p, f->type, space);
    str_member(b, "doc", f->doc);
    if (f->def) {
        /* A float's "NaN", "Infinity" or "-Infinity" stays a string: Jackson quotes them. */
        key(b, "default");
        av_buf_json(b, f->def);
    }
    if (f->order != AV_ASCENDING)
        str_member(b, "order", f->order == AV_DESCENDING ? "descending" : "ignore");
    aliases(b, f->aliases, f->naliases, NULL, false);
    props(b, f->props);
    av_buf_putc(b, '}');
}

static void print_named(printer *p, const av_node *n, const char *space)
{
    av_buf *b = p->b;
    av_buf_puts(b, "{\"type\":");
    const char *t =
        n->kind == AV_RECORD ? (n->is_error ? "error" : "record") : av_kind_names[n->kind];
    av_buf_json_str(b, t, strlen(t));
    str_member(b, "name", n->name);
    if (n->space) {
        if (!space || strcmp(space, n->space))
            str_member(b, "namespace", n->space);
    } else if (space) {
        str_member(b, "namespace", "");
    }
    str_member(b, "doc", n->doc);
    if (n->kind == AV_RECORD) {
        key(b, "fields");
        av_buf_putc(b, '[');
        for (size_t i = 0; i < n->nfields; i++) {
            if (i)
                av_buf_putc(b, ',');
            print_field(p, &n->fields[i], n->space);
        }
        av_buf_putc(b, ']');
    } else if (n->kind == AV_ENUM) {
        key(b, "symbols");
        av_buf_putc(b, '[');
        for (size_t i = 0; i < n->nsymbols; i++) {
            if (i)
                av_buf_putc(b, ',');
            av_buf_json_str(b, n->symbols[i], strlen(n->symbols[i]));
        }
        av_buf_putc(b, ']');
        str_member(b, "default", n->enum_default);
    } else {
        char sz[24];
        snprintf(sz, sizeof(sz), "%zu", n->size);
        key(b, "size");
        av_buf_puts(b, sz);
    }
    props(b, n->props);
    aliases(b, n->aliases, n->naliases, n->space, true);
    av_buf_putc(b, '}');
}

static void print_node(printer *p, const av_node *n, const char *space)
{
    av_buf *b = p->b;
    if (n->fullname) {
        if (!seen(p, n)) {
            print_named(p, n, space);
            return;
        }
        const char *ref = !n->space || (space && !strcmp(space, n->space)) ? n->name : n->fullname;
        av_buf_json_str(b, ref, strlen(ref));
        return;
    }
    const char *t = av_kind_names[n->kind];
    switch (n->kind) {
    case AV_UNION:
        av_buf_putc(b, '[');
        for (size_t i = 0; i < n->nbranches; i++) {
            if (i)
                av_buf_putc(b, ',');
            print_node(p, n->branches[i], space);
        }
        av_buf_putc(b, ']');
        return;
    case AV_ARRAY:
    case AV_MAP:
        av_buf_puts(b, "{\"type\":");
        av_buf_json_str(b, t, strlen(t));
        key(b, n->kind == AV_ARRAY ? "items" : "values");
        print_node(p, n->items, space);
        props(b, n->props);
        av_buf_putc(b, '}');
        return;
    default:
        if (!n->props) {
            av_buf_json_str(b, t, strlen(t));
            return;
        }
        av_buf_puts(b, "{\"type\":");
        av_buf_json_str(b, t, strlen(t));
        props(b, n->props);
        av_buf_putc(b, '}');
    }
}

char *av_canonical(const av_schema *s)
{
    av_buf b = {0};
    printer p = {.b = &b, .seen = calloc(s->nnodes ? s->nnodes : 1, sizeof(bool))};
    if (!p.seen)
        return NULL;
    print_node(&p, s->root, NULL);
    free(p.seen);
    if (b.failed || !b.p) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
