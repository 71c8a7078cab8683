/*
 * topic_name.c: the rule of topic names, and the reversible mapping between a Redis key (any
 * bytes) and the topic name that holds it (base.h; docs/redis.md#keys-and-topics).
 *
 * A topic name is 1 to TD_TOPIC_NAME_MAX bytes. The bytes 0x21..0x7E stand for themselves,
 * except seven that are syntax somewhere a name travels: '%' (this escape), '/' (paths,
 * <topic>/<partition> keys), '"' and '\' (JSON, Prometheus labels), '*' and '#' (patterns) and
 * ',' (lists). Every other byte of a key (controls, space, those seven, bytes >= 0x80) is
 * written %XX with two upper-case hex digits. A name is valid only in this canonical form, so
 * that one key has exactly one name: "%3a", "%41" (an 'A' escaped) and a '%' without two
 * digits are not names. Three keys cannot be written byte by byte: the empty key is the name
 * "%" (the only name with a lone '%'), and "." and ".." (reserved names, for directories) are
 * "%2E" and "%2E%2E".
 *
 * The functions are pure and allocate nothing; they run in time linear in their input. A
 * prefix of a key escapes to a prefix of its name (escape and unescape work byte by byte), which
 * ACL prefixes rely on; only the three whole-name cases above differ.
 */
#include <string.h>

#include "base/base.h"

static const char hex[] = "0123456789ABCDEF";

bool td_name_plain(uint8_t c)
{
    return c >= 0x21 && c <= 0x7E && c != '%' && c != '/' && c != '"' && c != '\\' && c != '*' &&
           c != '#' && c != ',';
}

static int hexdigit(uint8_t c) /* upper case only: the canonical form */
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

ssize_t td_name_escape(const void *bytes, size_t n, char *out, size_t cap)
{
    const uint8_t *b = bytes;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t need = td_name_plain(b[i]) ? 1 : 3;
        if (o + need >= cap)
            return -1;
        if (need == 1) {
            out[o++] = (char)b[i];
        } else {
            out[o++] = '%';
            out[o++] = hex[b[i] >> 4];
            out[o++] = hex[b[i] & 15];
        }
    }
    if (cap == 0)
        return -1;
    out[o] = 0;
    return (ssize_t)o;
}

ssize_t td_name_unescape(const char *name, size_t n, uint8_t *out, size_t cap, size_t *bad)
{
    const uint8_t *s = (const uint8_t *)name;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c == '%') {
            if (n - i < 3 || hexdigit(s[i + 1]) < 0 || hexdigit(s[i + 2]) < 0) {
                *bad = i;
                return -1;
            }
            c = (uint8_t)(hexdigit(s[i + 1]) << 4 | hexdigit(s[i + 2]));
            if (td_name_plain(c)) { /* "%41": 'A' has one spelling, "A" */
                *bad = i;
                return -1;
            }
            i += 2;
        } else if (!td_name_plain(c)) {
            *bad = i;
            return -1;
        }
        if (o == cap) {
            *bad = i;
            return -1;
        }
        out[o++] = c;
    }
    return (ssize_t)o;
}

ssize_t td_key_to_name(const void *key, size_t n, char out[TD_TOPIC_NAME_MAX + 1])
{
    const char *special = n == 0                            ? "%"
                          : n == 1 && !memcmp(key, ".", 1)  ? "%2E"
                          : n == 2 && !memcmp(key, "..", 2) ? "%2E%2E"
                                                            : NULL;
    if (special) {
        strcpy(out, special);
        return (ssize_t)strlen(special);
    }
    return td_name_escape(key, n, out, TD_TOPIC_NAME_MAX + 1);
}

ssize_t td_name_to_key(const char *name, size_t n, uint8_t *out, size_t cap)
{
    const char *why;
    size_t at;
    if (td_name_check(name, n, &why, &at) != 0)
        return -1;
    if (n == 1 && name[0] == '%')
        return 0;
    if ((n == 3 && !memcmp(name, "%2E", 3)) || (n == 6 && !memcmp(name, "%2E%2E", 6))) {
        if (cap < n / 3)
            return -1;
        memcpy(out, "..", n / 3);
        return (ssize_t)(n / 3);
    }
    return td_name_unescape(name, n, out, cap, &at);
}

int td_name_check(const char *name, size_t n, const char **why, size_t *at)
{
    *at = 0;
    if (n == 0) {
        *why = "a topic name is empty";
        return -1;
    }
    if (n > TD_TOPIC_NAME_MAX) {
        *at = TD_TOPIC_NAME_MAX;
        *why = "a topic name is at most 249 bytes long";
        return -1;
    }
    if ((n == 1 && name[0] == '.') || (n == 2 && name[0] == '.' && name[1] == '.')) {
        *why = "'.' and '..' are reserved (the keys '.' and '..' are the topics %2E and %2E%2E)";
        return -1;
    }
    if ((n == 1 && name[0] == '%') || (n == 3 && !memcmp(name, "%2E", 3)) ||
        (n == 6 && !memcmp(name, "%2E%2E", 6)))
        return 0;
    const uint8_t *s = (const uint8_t *)name;
    for (size_t i = 0; i < n; i++) {
        *at = i;
        if (s[i] == '%') {
            if (n - i < 3 || hexdigit(s[i + 1]) < 0 || hexdigit(s[i + 2]) < 0) {
                *why = "a '%' must start an escape of two upper-case hex digits (%3A)";
                return -1;
            }
            if (td_name_plain((uint8_t)(hexdigit(s[i + 1]) << 4 | hexdigit(s[i + 2])))) {
                *why = "an escape (%XX) stands for a byte that a name writes as itself";
                return -1;
            }
            i += 2;
        } else if (!td_name_plain(s[i])) {
            *why = "a byte outside '!'..'~', or one of % / \" \\ * # , must be escaped as %XX";
            return -1;
        }
    }
    return 0;
}
