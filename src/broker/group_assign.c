/*
 * group_assign.c: the decoder of Kafka's ConsumerProtocolAssignment (group.h,
 * coord_assignment_topics), a pure function over the bytes a group's leader sent in SyncGroup,
 * which the coordinator keeps opaque. It is the broker's so that every listener that describes a
 * group (HTTP's REST API) reads assignments without depending on another listener's codec.
 *
 * Layout (big-endian): int16 version, int32 topic count, then per topic: int16 name length and
 * the name, int32 partition count and the partitions as int32; then the user data, not read.
 * Counts are checked against the bytes left before anything is allocated, so that a hostile
 * count costs nothing.
 */
#include <string.h>

#include "broker/group.h"

typedef struct areader {
    const uint8_t *p;
    size_t n, off;
    bool bad;
} areader;

static bool have(areader *r, size_t k)
{
    if (r->bad || r->n - r->off < k)
        r->bad = true;
    return !r->bad;
}

static int32_t get32(areader *r)
{
    if (!have(r, 4))
        return 0;
    int32_t v = (int32_t)td_load_be32(r->p + r->off);
    r->off += 4;
    return v;
}

static int16_t get16(areader *r)
{
    if (!have(r, 2))
        return 0;
    int16_t v = (int16_t)td_load_be16(r->p + r->off);
    r->off += 2;
    return v;
}

/* A count of items of at least `each` bytes: -1 (and bad) if negative or beyond the bytes left. */
static int32_t get_count(areader *r, size_t each)
{
    int32_t c = get32(r);
    if (r->bad || c < 0 || (uint64_t)c * each > r->n - r->off) {
        r->bad = true;
        return -1;
    }
    return c;
}

int coord_assignment_topics(const uint8_t *p, size_t n, td_arena *a,
                            coord_assigned_topic **topics)
{
    areader r = {p, n, 0, false};
    *topics = NULL;
    int16_t version = get16(&r);
    int32_t count = get_count(&r, 6); /* a topic takes at least its two lengths */
    if (r.bad || version < 0)
        return -1;
    coord_assigned_topic *v = td_arena_calloc(a, count ? (size_t)count : 1, sizeof(*v));
    if (!v)
        return -1;
    for (int32_t i = 0; i < count; i++) {
        int16_t len = get16(&r);
        if (r.bad || len < 0 || !have(&r, (size_t)len) || memchr(p + r.off, 0, (size_t)len))
            return -1;
        char *name = td_arena_strndup(a, (const char *)p + r.off, (size_t)len);
        r.off += (size_t)len;
        int32_t np = get_count(&r, 4);
        int32_t *parts = td_arena_calloc(a, np > 0 ? (size_t)np : 1, sizeof(*parts));
        if (r.bad || !name || !parts)
            return -1;
        for (int32_t k = 0; k < np; k++)
            parts[k] = get32(&r);
        v[i] = (coord_assigned_topic){name, np, parts};
    }
    *topics = v;
    return count;
}
