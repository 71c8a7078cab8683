/*
 * json_real.c: JSON numbers as short as they can be (see base.h).
 *
 * jansson writes a real with "%.17g", the precision that always reads back as the same double,
 * so 0.1 comes out as 0.10000000000000001. JavaScript, Python and Java print the shortest text
 * that reads back as the same double instead, and so does tidings: each real in the text is
 * printed with 15 significant digits, or 16, or 17, the first that reads back exactly. A double
 * that some decimal of k <= 15 digits denotes gets that decimal (%.15g drops trailing zeros),
 * because the nearest 15-digit decimal to the double is that one; and a correctly rounded
 * 16-digit decimal reads back whenever any 16-digit decimal does (subnormal numbers, with fewer
 * significant bits, try every precision from 1). The result is never longer
 * than what jansson wrote, so the rewrite is in place. Formatting and parsing use the C locale's
 * '.' (neither the broker nor the command calls setlocale).
 */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static bool number_char(char c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* The shortest form of the real token t[0..n) into out (room for 32): its length, or 0 to keep
 * the token as it is. */
static size_t shortest(const char *t, size_t n, char *out)
{
    char tok[64];
    if (n >= sizeof(tok))
        return 0;
    memcpy(tok, t, n);
    tok[n] = 0;
    char *end;
    double v = strtod(tok, &end);
    if (*end || v - v != 0) /* not all of it a number, or an overflow to infinity */
        return 0;
    /* Subnormal numbers have fewer significant bits: 5e-324 needs one digit, not 15. */
    bool subnormal = v != 0 && v > -DBL_MIN && v < DBL_MIN;
    for (int prec = subnormal ? 1 : 15; prec <= 17; prec++) {
        int len = snprintf(out, 32, "%.*g", prec, v);
        if (len <= 0 || len >= 28)
            return 0;
        if (strtod(out, NULL) != v)
            continue;
        /* Still a real to JSON readers that tell them apart (jansson does): "1.0", not "1". */
        if (!strpbrk(out, ".eE")) {
            memcpy(out + len, ".0", 3);
            len += 2;
        }
        return (size_t)len;
    }
    return 0;
}

size_t td_json_shorten_reals(char *s, size_t n)
{
    size_t r = 0, w = 0;
    while (r < n) {
        char c = s[r];
        if (c == '"') { /* copy the string through, escapes included */
            s[w++] = s[r++];
            while (r < n && s[r] != '"') {
                if (s[r] == '\\' && r + 1 < n)
                    s[w++] = s[r++];
                s[w++] = s[r++];
            }
            if (r < n)
                s[w++] = s[r++];
            continue;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            size_t start = r;
            bool real = false;
            while (r < n && number_char(s[r])) {
                real |= s[r] == '.' || s[r] == 'e' || s[r] == 'E';
                r++;
            }
            char buf[32];
            size_t len = real ? shortest(s + start, r - start, buf) : 0;
            if (len && len <= r - start) {
                memcpy(s + w, buf, len);
                w += len;
            } else {
                memmove(s + w, s + start, r - start);
                w += r - start;
            }
            continue;
        }
        s[w++] = s[r++];
    }
    if (w < n)
        s[w] = 0;
    return w;
}
