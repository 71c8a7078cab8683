/*
 * stream_id.c: the text of Redis stream IDs (stream_id.h, docs/redis.md#stream-ids).
 *
 * Redis 7.0 reads each number of an ID with string2ull: first its strict decimal reader (no
 * sign but '-', no leading zero, up to 2^63-1; a negative value is refused), and when that fails,
 * C's strtoull, which also takes leading white space, '+', leading zeros, values up to 2^64-1,
 * and a '-' that wraps modulo 2^64 (so " -5" and "-05" are 18446744073709551611 while "-5" is
 * invalid). Clients that send odd forms get what Redis gives them, so both steps are written out
 * here, without the C library (whose strtoull depends on the locale).
 */
#include <string.h>

#include "proto/resp/stream_id.h"

/* Redis's string2ll limited to values >= 0: 1 and the value, 0 when it does not read s whole,
 * -1 when it reads a negative value (which string2ull refuses without trying strtoull). */
static int strict_decimal(const uint8_t *s, size_t n, uint64_t *out)
{
    if (n == 0 || n >= 21)
        return 0;
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return 1;
    }
    size_t i = 0;
    bool neg = s[0] == '-';
    if (neg && ++i == n)
        return 0;
    if (s[i] < '1' || s[i] > '9')
        return 0;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    if (neg)
        return v > (uint64_t)INT64_MAX + 1 ? 0 : -1;
    if (v > (uint64_t)INT64_MAX)
        return 0;
    *out = v;
    return 1;
}

/* C's strtoull in base 10 in the "C" locale, accepting only when it reads s whole. */
static bool c_strtoull(const uint8_t *s, size_t n, uint64_t *out)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')))
        i++;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    size_t digits = i;
    uint64_t v = 0;
    bool over = false;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            over = true; /* ERANGE, and strtoull reads on to the last digit */
        else
            v = v * 10 + d;
    }
    if (i == digits || i != n || over)
        return false; /* no digits (nothing converted), trailing bytes, or out of range */
    *out = neg ? (uint64_t)0 - v : v;
    return true;
}

/* Redis's string2ull over s[0..n). */
static bool redis_u64(const uint8_t *s, size_t n, uint64_t *out)
{
    int r = strict_decimal(s, n, out);
    if (r != 0)
        return r > 0;
    return n > 0 && c_strtoull(s, n, out);
}

bool resp_sid_parse(const uint8_t *p, size_t n, uint64_t missing_seq, int flags, td_sid *id,
                    bool *seq_given)
{
    if (n > 127)
        return false;
    const uint8_t *nul = memchr(p, 0, n); /* Redis reads the argument as a C string */
    if (nul)
        n = (size_t)(nul - p);
    bool special = n == 1 && (p[0] == '-' || p[0] == '+');
    if (special && (flags & RESP_SID_STRICT))
        return false;
    if (seq_given)
        *seq_given = true;
    if (special) {
        *id = p[0] == '-' ? (td_sid){0, 0} : (td_sid){UINT64_MAX, UINT64_MAX};
        return true;
    }
    const uint8_t *dash = memchr(p, '-', n);
    size_t msn = dash ? (size_t)(dash - p) : n;
    td_sid v = {0, missing_seq};
    if (!redis_u64(p, msn, &v.ms))
        return false;
    if (dash) {
        const uint8_t *s = dash + 1;
        size_t sn = n - msn - 1;
        if ((flags & RESP_SID_MS_STAR) && sn == 1 && s[0] == '*') {
            v.seq = 0;
            if (seq_given)
                *seq_given = false;
        } else if (!redis_u64(s, sn, &v.seq)) {
            return false;
        }
    }
    *id = v;
    return true;
}

size_t resp_sid_format(char *buf, td_sid id)
{
    size_t n = td_u64_text(buf, id.ms);
    buf[n++] = '-';
    return n + td_u64_text(buf + n, id.seq);
}

bool resp_sid_prev(td_sid *id)
{
    if (id->seq > 0) {
        id->seq--;
        return true;
    }
    if (id->ms == 0)
        return false;
    id->ms--;
    id->seq = UINT64_MAX;
    return true;
}

const char *resp_sid_bound(const uint8_t *p, size_t n, bool is_start, td_sid *id)
{
    static const char invalid[] = "ERR Invalid stream ID specified as stream command argument";
    bool excl = n > 1 && p[0] == '(';
    if (excl ? !resp_sid_parse(p + 1, n - 1, is_start ? 0 : UINT64_MAX, RESP_SID_STRICT, id, NULL)
             : !resp_sid_parse(p, n, is_start ? 0 : UINT64_MAX, 0, id, NULL))
        return invalid;
    if (excl && is_start && !td_sid_next(id))
        return "ERR invalid start ID for the interval";
    if (excl && !is_start && !resp_sid_prev(id))
        return "ERR invalid end ID for the interval";
    return NULL;
}
