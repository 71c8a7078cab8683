/*
 * pattern.c: topic wildcard patterns (pattern.h).
 *
 * Matching treats names as sequences of segments and runs the classic two-pointer glob match
 * with '#' as the star and '*' as the single-item wildcard: on a mismatch it backtracks to the
 * last '#', which then swallows one more segment. That is linear in practice and never worse
 * than the product of the segment counts; no recursion, no allocation.
 */
#include "broker/pattern.h"

#include <string.h>

#include "base/base.h"
#include "storage/storage.h"

int td_pattern_validate(const char *p, size_t n, const char **why)
{
    if (n == 0) {
        *why = "a pattern is empty";
        return TD_EINVAL;
    }
    if (n > TD_TOPIC_NAME_MAX) {
        *why = "a pattern is longer than 249 characters";
        return TD_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '*' || c == '#') {
            bool alone = (i == 0 || p[i - 1] == '.') && (i + 1 == n || p[i + 1] == '.');
            if (!alone) {
                *why = "'*' and '#' must be a whole segment between dots (\"orders.*\", not "
                       "\"orders*\")";
                return TD_EINVAL;
            }
        } else if (c == '%' && n > 1) {
            /* An escape of a topic name (%20): canonical, as in the names it matches. */
            uint8_t b;
            size_t bad;
            if (i + 3 > n || td_name_unescape(p + i, 3, &b, 1, &bad) != 1) {
                *why = "a '%' in a pattern must be an escape of a topic name (%20, %2F; upper-case "
                       "hex of a byte that names escape)";
                return TD_EINVAL;
            }
            i += 2;
        } else if (c != '%' && !td_name_plain((uint8_t)c)) {
            *why = "a pattern has characters other than a topic name's (bytes '!' to '~' but / "
                   "\" \\ , and %XX escapes) and the wildcards '*' and '#'";
            return TD_EINVAL;
        }
    }
    /* "orders." is what a URL leaves of "orders.#" when its '#' was not written %23 (the rest
     * is a fragment, never sent): refused rather than read as a topic nobody meant. */
    if (p[0] == '.' || p[n - 1] == '.' || memmem(p, n, "..", 2)) {
        *why = "a pattern has an empty segment (a '.' at its start or end, or two in a row)";
        return TD_EINVAL;
    }
    return 0;
}

bool td_pattern_is_literal(const char *p, size_t n)
{
    return !memchr(p, '*', n) && !memchr(p, '#', n);
}

/* The segment starting at s (up to the next '.' or end): its length. */
static size_t seg_len(const char *s, size_t left)
{
    const char *d = memchr(s, '.', left);
    return d ? (size_t)(d - s) : left;
}

/* Moves *i past the segment of length n (and its dot); at the end *i becomes len + 1. */
static size_t next_seg(size_t i, size_t n)
{
    return i + n + 1;
}

bool td_pattern_match(const char *p, size_t plen, const char *t, size_t tlen)
{
    /* A topic starting with '$' (the system topics) is not matched by a wildcard in the first
     * segment, as MQTT's rule has it: "#" is every topic of the users, "$sys.#" the system's. */
    if (tlen && t[0] == '$' && plen && (p[0] == '*' || p[0] == '#') && seg_len(p, plen) == 1)
        return false;
    /* Positions are segment starts; plen + 1 (tlen + 1) means "past the last segment". */
    size_t pi = 0, ti = 0;
    size_t star_p = (size_t)-1, star_t = 0;
    while (ti <= tlen) {
        if (pi <= plen) {
            size_t pn = seg_len(p + pi, plen - pi);
            size_t tn = seg_len(t + ti, tlen - ti);
            if (pn == 1 && p[pi] == '#') {
                star_p = pi; /* '#' first matches nothing */
                star_t = ti;
                pi = next_seg(pi, pn);
                continue;
            }
            if ((pn == 1 && p[pi] == '*') || (pn == tn && memcmp(p + pi, t + ti, pn) == 0)) {
                pi = next_seg(pi, pn);
                ti = next_seg(ti, tn);
                continue;
            }
        }
        if (star_p == (size_t)-1)
            return false;
        /* Backtrack: the last '#' swallows one more segment of the topic. */
        star_t = next_seg(star_t, seg_len(t + star_t, tlen - star_t));
        ti = star_t;
        pi = next_seg(star_p, 1);
    }
    /* The topic is used up: what is left of the pattern must be '#'s only. */
    while (pi <= plen) {
        size_t pn = seg_len(p + pi, plen - pi);
        if (!(pn == 1 && p[pi] == '#'))
            return false;
        pi = next_seg(pi, pn);
    }
    return true;
}

bool td_topic_matches(const char *pattern, const char *topic)
{
    const char *why;
    size_t pl = pattern ? strlen(pattern) : 0;
    return pattern && topic && td_pattern_validate(pattern, pl, &why) == 0 &&
           td_pattern_match(pattern, pl, topic, strlen(topic));
}
