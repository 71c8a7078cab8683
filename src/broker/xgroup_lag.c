/*
 * xgroup_lag.c: a consumer group's entries-read counter and lag with Redis 7.0's rules
 * (t_stream.c: streamEstimateDistanceFromFirstEverEntry, streamRangeHasTombstones,
 * streamReplyWithCGLag, and the counter's update as XREADGROUP delivers), on the stream's
 * counters as the log gives them (xgroup_int.h, xview).
 *
 * Redis keeps per group a counter of the entries it has read, set by XGROUP CREATE and SETID
 * (ENTRIESREAD, unknown without it), counted up by each delivery while no deleted entry lies
 * ahead, and estimated from the stream's counters where it is unknown or a deleted entry
 * makes counting unsafe; where no estimate holds, XINFO answers nil. tidings could count
 * exactly (offsets count every entry ever added), but clients compare what they see with
 * Redis's answers, so the same counter is kept, saved with the group, and the same estimates
 * are made from the same counters: entries added (the high watermark, or what XSETID's
 * ENTRIESADDED set plus the entries appended since: part_stream_added), the length, the first
 * entry's ID, the last ID and the largest ID XDEL removed (or XSETID's MAXDELETEDID set).
 *
 * The counters cost reads of the log (the first entry's ID, the record count of a compacted
 * topic), so a view computes them once, and only when a rule needs them: a delivery in a stream
 * without XDEL and with a known counter only adds one.
 */
#include <stdlib.h>

#include "broker/xgroup_int.h"

static bool sid_zero(td_sid id)
{
    return !id.ms && !id.seq;
}

/* Redis does this arithmetic on 64-bit integers that wrap (a counter set near the top by
 * ENTRIESREAD); so does this, without C's undefined signed overflow. */
static int64_t wrap_add(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

static int64_t wrap_sub(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a - (uint64_t)b);
}

/* The records in [start, end): entries, not offsets (a compacted topic has gaps). */
static int64_t view_records(td_part *p, int64_t start, int64_t end)
{
    int64_t n = end - start;
    if (n > 0 && part_count_records(p, start, end, &n) != 0)
        n = end - start;
    return TD_MAX(0, n);
}

void xg_view_start(xview *v, td_part *p, int64_t hw, bool count_now)
{
    *v = (xview){.p = p, .hw = hw >= 0 ? hw : part_high_watermark(p), .records = -1};
    v->added = (int64_t)part_stream_added(p, v->hw); /* Redis prints its uint64_t signed */
    v->start = part_log_start(p);
    if (count_now && part_has_gaps(p))
        v->records = view_records(p, v->start, v->hw);
}

void xg_view_stream(xview *v, const xstr *st)
{
    v->st = st;
    v->max_del = st ? st->max_del : (td_sid){0, 0};
}

/* The stream's last ID as of the view's high watermark: the partition's (which XSETID may
 * have raised), unless entries past the watermark were appended meanwhile (not yet durable
 * under fsync=always), when it is the last entry's below it. */
static td_sid view_last(const xview *v)
{
    td_sid last = {0, 0};
    part_stream_last(v->p, &last);
    if (part_log_end(v->p) != v->hw && v->hw > v->start &&
        part_stream_id(v->p, v->hw - 1, &last, NULL) != 0)
        part_stream_last(v->p, &last);
    return last;
}

/* Computes the length, the first entry's ID and the last ID once. */
static void view_fill(xview *v)
{
    if (v->have)
        return;
    v->have = true;
    const xstr *st = v->st;
    int64_t ls = v->start, hw = v->hw;
    if (hw <= ls) {
        v->length = 0;
        v->last = view_last(v);
        return;
    }
    size_t d0 = st && st->ndel ? xg_del_lower(st, ls) : 0;
    size_t d1 = st && st->ndel ? xg_del_lower(st, hw) : 0;
    if (v->records < 0)
        v->records = view_records(v->p, ls, hw);
    v->length = TD_MAX(0, v->records - (int64_t)(d1 - d0));
    v->last = view_last(v);
    int64_t first = -1;
    if (v->length > 0 && !part_has_gaps(v->p)) {
        first = ls; /* the first offset XDEL did not remove */
        for (size_t i = d0; i < d1 && st->del[i] == first; i++)
            first++;
    } else if (v->length > 0) {
        /* A compacted stream: among its first records, one more than XDEL removed. */
        int64_t *recs = NULL;
        size_t nrecs = 0;
        if (part_record_offsets(v->p, ls, hw, d1 - d0 + 1, &recs, &nrecs) == 0)
            for (size_t i = 0; i < nrecs && first < 0; i++)
                if (!xg_del_has(st, recs[i]))
                    first = recs[i];
        free(recs);
    }
    if (first < 0 || part_stream_id(v->p, first, &v->first, NULL) != 0)
        v->first = (td_sid){0, 0};
}

/* streamRangeHasTombstones(s, &start, NULL): whether a deleted entry may lie at or after
 * start. */
static bool has_tombstones(xview *v, td_sid start)
{
    if (sid_zero(v->max_del) || td_sid_cmp(start, v->max_del) > 0)
        return false;
    view_fill(v);
    return v->length > 0 && td_sid_cmp(v->first, v->max_del) <= 0;
}

int64_t xg_estimate(xview *v, td_sid id)
{
    if (!v->added)
        return 0; /* never written to */
    view_fill(v);
    int cmp_last = td_sid_cmp(id, v->last);
    if (!v->length && cmp_last <= 0)
        return v->added;
    if (cmp_last == 0)
        return v->added;
    if (cmp_last > 0)
        return XG_READ_UNKNOWN; /* a future ID */
    if (sid_zero(v->max_del) || td_sid_cmp(v->max_del, v->first) < 0) {
        int cmp_first = td_sid_cmp(id, v->first);
        if (cmp_first < 0)
            return wrap_sub(v->added, v->length);
        if (cmp_first == 0)
            return wrap_add(wrap_sub(v->added, v->length), 1);
    }
    return XG_READ_UNKNOWN; /* inside the stream, or deleted entries ahead */
}

int64_t xg_read_advance(xview *v, int64_t read, td_sid id)
{
    if (read != XG_READ_UNKNOWN && !has_tombstones(v, id))
        return wrap_add(read, 1);
    return v->added ? xg_estimate(v, id) : read;
}

bool xg_lag(xview *v, td_sid last, int64_t read, int64_t *lag)
{
    *lag = 0;
    if (!v->added)
        return true; /* a stream never written to */
    if (read == XG_READ_UNKNOWN || has_tombstones(v, last))
        read = xg_estimate(v, last);
    if (read == XG_READ_UNKNOWN)
        return false;
    *lag = wrap_sub(v->added, read);
    return true;
}
