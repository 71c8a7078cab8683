/* libFuzzer target: topic wildcard patterns (broker/pattern.c) and SSE resume cursors
 * (proto/http/subscribe.c). The input is split at its first NUL into a pattern and a topic
 * name. Validation must not crash and must agree with the pattern's characters; the matcher must
 * agree with a plain recursive reference matcher on every valid pattern; the cursor parser must
 * stay inside its input and give back only names (as the cursor writes them), partitions and
 * offsets in range. */
#include <stdlib.h>
#include <string.h>

#include "broker/pattern.h"
#include "proto/http/http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Segment-wise reference: '#' matches zero or more segments, '*' exactly one. */
static bool ref_match(const char *p, size_t pn, const char *t, size_t tn, bool t_done)
{
    if (pn == (size_t)-1) /* pattern used up */
        return t_done;
    const char *pd = memchr(p, '.', pn);
    size_t ps = pd ? (size_t)(pd - p) : pn;
    const char *prest = pd ? pd + 1 : p + pn;
    size_t prn = pd ? pn - ps - 1 : (size_t)-1;
    if (ps == 1 && p[0] == '#') {
        if (ref_match(prest, prn, t, tn, t_done))
            return true; /* zero segments */
        if (t_done)
            return false;
        const char *td = memchr(t, '.', tn);
        return ref_match(p, pn, td ? td + 1 : t + tn, td ? tn - (size_t)(td - t) - 1 : 0, !td);
    }
    if (t_done)
        return false;
    const char *td = memchr(t, '.', tn);
    size_t ts = td ? (size_t)(td - t) : tn;
    if (!(ps == 1 && p[0] == '*') && !(ps == ts && memcmp(p, t, ts) == 0))
        return false;
    return ref_match(prest, prn, td ? td + 1 : t + tn, td ? tn - ts - 1 : 0, !td);
}

static void on_pos(void *arg, td_slice topic, int32_t partition, int64_t offset)
{
    const td_slice *in = arg;
    /* A topic as the cursor writes it: its '%' and ';' as %25 and %3B, so up to three times
     * the longest name. */
    if (topic.n == 0 || topic.n > 3 * TD_TOPIC_NAME_MAX || topic.p < in->p ||
        topic.p + topic.n > in->p + in->n || partition < 0 || offset < 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    td_slice in = td_slice_make(data, size);
    (void)http_cursor_parse((const char *)data, size, on_pos, &in);
    const uint8_t *nul = memchr(data, 0, size);
    size_t pn = nul ? (size_t)(nul - data) : size;
    const char *p = (const char *)data;
    const char *t = nul ? (const char *)nul + 1 : "";
    size_t tn = nul ? size - pn - 1 : 0;
    const char *why = NULL;
    if (td_pattern_validate(p, pn, &why) != 0) {
        if (!why)
            abort();
        return 0;
    }
    bool got = td_pattern_match(p, pn, t, tn);
    /* The reference branches at every '#': compare where it stays cheap. */
    size_t hashes = 0;
    for (size_t i = 0; i < pn; i++)
        hashes += p[i] == '#';
    if (hashes > 4 || tn > 200)
        return 0;
    /* MQTT's rule (pattern.h): a first-segment wildcard never matches a topic starting with
     * '$'. */
    bool dollar =
        tn && t[0] == '$' && pn && (p[0] == '*' || p[0] == '#') && (pn == 1 || p[1] == '.');
    bool want = !dollar && ref_match(p, pn, t, tn, false);
    if (got != want)
        abort();
    if (td_pattern_is_literal(p, pn) && got != (pn == tn && memcmp(p, t, pn) == 0))
        abort();
    return 0;
}
