/*
 * protobuf_lex.c: the tokenizer of .proto files, and the canonical form printed from its tokens.
 *
 * Tokens follow the protobuf language specification: identifiers, integer literals (decimal,
 * 0x hex, 0 octal), float literals, strings in single or double quotes with C-like escapes
 * (\a \b \f \n \r \t \v \\ \' \" \?, \xHH, \ooo, \uHHHH, \UHHHHHHHH), and one-character
 * symbols. Whitespace, `//` and `/ * * /` comments are skipped. Every token keeps its line and
 * column (1-based, columns in bytes) for the errors of the parser.
 *
 * The canonical form is printed from the tokens rather than from the model: it keeps everything
 * the author wrote (options, reserved ranges, services) in source order, one statement per line
 * with two spaces of indentation per block, comments and layout dropped, strings written one
 * way. Two files that differ only by comments, whitespace, quotes or escapes get the same form,
 * as Confluent's canonicalString() does for the parts it normalizes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/protobuf_int.h"

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int push(pb_toks *t, uint8_t kind, size_t off, size_t len, uint32_t line, uint32_t col)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        pb_tok *v = realloc(t->v, cap * sizeof(*v));
        if (!v)
            return -1;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = (pb_tok){kind, (uint32_t)off, (uint32_t)len, line, col};
    return 0;
}

static void lex_error(schema_error *err, uint32_t line, uint32_t col, const char *msg)
{
    char where[32];
    snprintf(where, sizeof(where), "%u:%u", line, col);
    schema_set_error(err, where, "syntax", "%s at line %u, column %u", msg, line, col);
}

/* Whether s[0..n) is an integer literal: decimal, 0x hex or 0 octal. */
static bool int_literal(const char *s, size_t n)
{
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        for (size_t i = 2; i < n; i++)
            if (!is_hex(s[i]))
                return false;
        return true;
    }
    for (size_t i = 0; i < n; i++)
        if (!is_digit(s[i]) || (s[0] == '0' && s[i] > '7'))
            return false;
    return n > 0;
}

/* Whether s[0..n) is a float literal: digits, an optional fraction, an optional exponent. */
static bool float_literal(const char *s, size_t n)
{
    size_t i = 0, digits = 0;
    while (i < n && is_digit(s[i]))
        i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && is_digit(s[i]))
            i++, digits++;
    }
    if (!digits)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t e = i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == e)
            return false;
    }
    return i == n;
}

/* Checks the escapes of the string starting at text[i] (its quote); *end is past the closing
 * quote. -1 with *bad the offset of the fault. */
static int scan_string(const char *text, size_t len, size_t i, size_t *end, size_t *bad,
                       const char **why)
{
    char q = text[i++];
    while (i < len && text[i] != q) {
        char c = text[i];
        if (c == '\n' || c == 0) {
            *bad = i;
            *why = "a string ends at the end of its line";
            return -1;
        }
        if (c != '\\') {
            i++;
            continue;
        }
        if (i + 1 >= len)
            break;
        size_t esc = i;
        c = text[i + 1];
        i += 2;
        if (strchr("abfnrtv\\'\"?", c))
            continue;
        if (c == 'x' || c == 'X') {
            size_t k = 0;
            while (k < 2 && i < len && is_hex(text[i]))
                i++, k++;
            if (k)
                continue;
        } else if (c >= '0' && c <= '7') {
            for (int k = 0; k < 2 && i < len && text[i] >= '0' && text[i] <= '7'; k++)
                i++;
            continue;
        } else if (c == 'u' || c == 'U') {
            size_t want = c == 'u' ? 4 : 8, k = 0;
            while (k < want && i < len && is_hex(text[i]))
                i++, k++;
            if (k == want)
                continue;
        }
        *bad = esc;
        *why = "invalid escape in a string";
        return -1;
    }
    if (i >= len) {
        *bad = len;
        *why = "a string is not closed";
        return -1;
    }
    *end = i + 1;
    return 0;
}

int pb_lex(const char *text, size_t len, pb_toks *out, schema_error *err)
{
    size_t i = 0;
    uint32_t line = 1;
    size_t line_start = 0;
    memset(out, 0, sizeof(*out));
#define COL(at) ((uint32_t)((at)-line_start + 1))
    while (i < len) {
        char c = text[i];
        if (c == '\n') {
            i++;
            line++;
            line_start = i;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            i++;
            continue;
        }
        if (c == '/' && i + 1 < len && text[i + 1] == '/') {
            while (i < len && text[i] != '\n')
                i++;
            continue;
        }
        if (c == '/' && i + 1 < len && text[i + 1] == '*') {
            uint32_t l0 = line, c0 = COL(i);
            i += 2;
            while (i + 1 < len && !(text[i] == '*' && text[i + 1] == '/')) {
                if (text[i] == '\n') {
                    line++;
                    line_start = i + 1;
                }
                i++;
            }
            if (i + 1 >= len) {
                lex_error(err, l0, c0, "a comment is not closed");
                goto fail;
            }
            i += 2;
            continue;
        }
        size_t start = i;
        uint8_t kind;
        if (is_alpha(c)) {
            while (i < len && (is_alpha(text[i]) || is_digit(text[i])))
                i++;
            kind = PB_TOK_IDENT;
        } else if (is_digit(c) || (c == '.' && i + 1 < len && is_digit(text[i + 1]))) {
            while (i < len && (is_alpha(text[i]) || is_digit(text[i]) || text[i] == '.' ||
                               ((text[i] == '+' || text[i] == '-') &&
                                (text[i - 1] == 'e' || text[i - 1] == 'E') &&
                                !(text[start + 1] == 'x' || text[start + 1] == 'X'))))
                i++;
            if (int_literal(text + start, i - start))
                kind = PB_TOK_INT;
            else if (float_literal(text + start, i - start))
                kind = PB_TOK_FLOAT;
            else {
                lex_error(err, line, COL(start), "invalid number");
                goto fail;
            }
        } else if (c == '"' || c == '\'') {
            size_t bad = 0;
            const char *why = NULL;
            if (scan_string(text, len, i, &i, &bad, &why) < 0) {
                lex_error(err, line, COL(bad), why);
                goto fail;
            }
            kind = PB_TOK_STRING;
        } else if (c > 32 && c < 127 && !is_digit(c)) {
            i++;
            kind = PB_TOK_SYM;
        } else {
            lex_error(err, line, COL(i), "unexpected character");
            goto fail;
        }
        if (push(out, kind, start, i - start, line, COL(start)) < 0)
            goto oom;
    }
    if (push(out, PB_TOK_EOF, len, 0, line, COL(len)) < 0)
        goto oom;
    return 0;
#undef COL
oom:
    schema_set_error(err, "", "memory", "out of memory");
fail:
    free(out->v);
    memset(out, 0, sizeof(*out));
    return -1;
}

/* Appends the UTF-8 encoding of code point u. */
static size_t put_utf8(char *o, uint32_t u)
{
    if (u < 0x80) {
        o[0] = (char)u;
        return 1;
    }
    if (u < 0x800) {
        o[0] = (char)(0xc0 | (u >> 6));
        o[1] = (char)(0x80 | (u & 0x3f));
        return 2;
    }
    if (u < 0x10000) {
        o[0] = (char)(0xe0 | (u >> 12));
        o[1] = (char)(0x80 | ((u >> 6) & 0x3f));
        o[2] = (char)(0x80 | (u & 0x3f));
        return 3;
    }
    if (u > 0x10ffff)
        u = 0xfffd;
    o[0] = (char)(0xf0 | (u >> 18));
    o[1] = (char)(0x80 | ((u >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((u >> 6) & 0x3f));
    o[3] = (char)(0x80 | (u & 0x3f));
    return 4;
}

static int hexval(int c)
{
    return is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
}

int pb_str_decode(const char *text, const pb_tok *t, char **out, size_t *n)
{
    /* A decoded string is never longer than its token: the longest expansion is \U, ten bytes
     * of text for at most four bytes. */
    char *o = malloc(t->len + 1);
    if (!o)
        return -1;
    const char *s = text + t->off + 1, *e = text + t->off + t->len - 1;
    size_t k = 0;
    while (s < e) {
        if (*s != '\\') {
            o[k++] = *s++;
            continue;
        }
        char c = s[1];
        s += 2;
        const char *simple = strchr("a\ab\bf\fn\nr\rt\tv\v\\\\''\"\"??", c);
        if (simple && ((simple - "a\ab\bf\fn\nr\rt\tv\v\\\\''\"\"??") % 2) == 0) {
            o[k++] = simple[1];
        } else if (c == 'x' || c == 'X') {
            int v = 0;
            for (int j = 0; j < 2 && s < e && is_hex(*s); j++)
                v = v * 16 + hexval(*s++);
            o[k++] = (char)v;
        } else if (c >= '0' && c <= '7') {
            int v = c - '0';
            for (int j = 0; j < 2 && s < e && *s >= '0' && *s <= '7'; j++)
                v = v * 8 + (*s++ - '0');
            o[k++] = (char)v;
        } else {
            int want = c == 'u' ? 4 : 8;
            uint32_t u = 0;
            for (int j = 0; j < want; j++)
                u = u * 16 + (uint32_t)hexval(*s++);
            k += put_utf8(o + k, u);
        }
    }
    o[k] = 0;
    *out = o;
    *n = k;
    return 0;
}

/* ---- the canonical form ---- */

typedef struct pbuf {
    char *p;
    size_t n, cap;
    bool oom;
} pbuf;

static void put(pbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void put_indent(pbuf *b, int indent)
{
    for (int i = 0; i < indent; i++)
        put(b, "  ", 2);
}

/* A string written one way: double quotes, the usual short escapes, printable ASCII as is,
 * every other byte in three octal digits. */
static void put_string(pbuf *b, const char *text, const pb_tok *t)
{
    char *s;
    size_t n;
    if (pb_str_decode(text, t, &s, &n) < 0) {
        b->oom = true;
        return;
    }
    put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(b, esc, 2);
        } else if (c == '\n') {
            put(b, "\\n", 2);
        } else if (c == '\t') {
            put(b, "\\t", 2);
        } else if (c == '\r') {
            put(b, "\\r", 2);
        } else if (c >= 0x20 && c < 0x7f) {
            esc[0] = (char)c;
            put(b, esc, 1);
        } else {
            snprintf(esc, sizeof(esc), "\\%03o", c);
            put(b, esc, 4);
        }
    }
    put(b, "\"", 1);
    free(s);
}

static bool sym_is(const char *text, const pb_tok *t, char c)
{
    return t->kind == PB_TOK_SYM && text[t->off] == c;
}

static bool ident_is(const char *text, const pb_tok *t, const char *w)
{
    size_t n = strlen(w);
    return t->kind == PB_TOK_IDENT && t->len == n && memcmp(text + t->off, w, n) == 0;
}

char *pb_canonical(const char *text, const pb_toks *toks)
{
    pbuf b = {0};
    int indent = 0;
    bool line_start = true, in_option = false;
    int nest = 0;  /* depth of [ ( < inside a statement */
    int inner = 0; /* depth of { } inside an option's value, printed on the line */
    const pb_tok *prev = NULL;
    for (size_t i = 0; i < toks->n && toks->v[i].kind != PB_TOK_EOF; i++) {
        const pb_tok *t = &toks->v[i];
        if (line_start && sym_is(text, t, ';'))
            continue; /* an empty statement */
        if (sym_is(text, t, '}') && inner == 0) {
            if (!line_start)
                put(&b, "\n", 1);
            if (indent > 0)
                indent--;
            put_indent(&b, indent);
            put(&b, "}\n", 2);
            line_start = true;
            in_option = false;
            nest = 0;
            prev = t;
            continue;
        }
        if (line_start) {
            put_indent(&b, indent);
            in_option = ident_is(text, t, "option");
        } else {
            bool glue = sym_is(text, prev, '(') || sym_is(text, prev, '[') ||
                        sym_is(text, prev, '<') || sym_is(text, prev, '.') ||
                        sym_is(text, prev, '-') || sym_is(text, prev, '+') ||
                        sym_is(text, t, ';') || sym_is(text, t, ',') || sym_is(text, t, ')') ||
                        sym_is(text, t, ']') || sym_is(text, t, '>') || sym_is(text, t, ':') ||
                        (sym_is(text, t, '<') && ident_is(text, prev, "map")) ||
                        /* A dot inside a dotted name ("a.b", "(x).y"), not a leading one, which
                         * follows a label, `stream` or `extend`. */
                        (sym_is(text, t, '.') &&
                         ((prev->kind == PB_TOK_IDENT && !ident_is(text, prev, "optional") &&
                           !ident_is(text, prev, "required") && !ident_is(text, prev, "repeated") &&
                           !ident_is(text, prev, "stream") && !ident_is(text, prev, "extend")) ||
                          sym_is(text, prev, ')')));
            if (!glue)
                put(&b, " ", 1);
        }
        line_start = false;
        if (t->kind == PB_TOK_STRING)
            put_string(&b, text, t);
        else
            put(&b, text + t->off, t->len);
        if (t->kind == PB_TOK_SYM) {
            char c = text[t->off];
            if (c == '[' || c == '(' || c == '<')
                nest++;
            else if ((c == ']' || c == ')' || c == '>') && nest > 0)
                nest--;
            else if (c == '{' && (in_option || nest > 0 || inner > 0))
                inner++;
            else if (c == '}' && inner > 0)
                inner--;
            else if (c == '{') {
                put(&b, "\n", 1);
                indent++;
                line_start = true;
                nest = 0;
            } else if (c == ';' && inner == 0) {
                put(&b, "\n", 1);
                line_start = true;
                in_option = false;
                nest = 0;
            }
        }
        prev = t;
    }
    if (!line_start)
        put(&b, "\n", 1);
    if (!b.p)
        put(&b, "", 0);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
