/*
 * libFuzzer target for the replication codec (proto/kafka/msgs_replica.c). The first byte picks
 * the message, the second its version, the rest is the body (after the header):
 *   0  a Fetch response, as a follower reads it (v4-17)
 *   1  an OffsetForLeaderEpoch request, as a leader will read it (v0-4)
 *   2  an OffsetForLeaderEpoch response, as a follower reads it (v0-4)
 *   3  a Fetch request with its tags, as a leader reads it (v4-17)
 * Every decoder must reject or accept the input without crashing, reading out of bounds or
 * allocating from lying counts. What decodes is encoded again, that is decoded, and encoded
 * once more: the two encodings must be the same bytes (the first may differ from the input:
 * Fetch responses drop preferred_read_replica, requests their forgotten topics).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/kafka/kafka.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef int (*dec_fn)(kafka_reader *r, int16_t v, void *out);
typedef void (*enc_fn)(kafka_out *o, int16_t v, const void *in);

static int dec_fetch_resp(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_fetch_resp(r, v, out);
}
static void enc_fetch_resp(kafka_out *o, int16_t v, const void *in)
{
    kafka_encode_fetch(o, v, in);
}
static int dec_le_req(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_offset_for_leader_epoch_req(r, v, out);
}
static void enc_le_req(kafka_out *o, int16_t v, const void *in)
{
    kafka_encode_offset_for_leader_epoch_req(o, v, in);
}
static int dec_le_resp(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_offset_for_leader_epoch_resp(r, v, out);
}
static void enc_le_resp(kafka_out *o, int16_t v, const void *in)
{
    kafka_encode_offset_for_leader_epoch_resp(o, v, in);
}
static int dec_fetch_req(kafka_reader *r, int16_t v, void *out)
{
    return kafka_decode_fetch(r, v, out);
}
static void enc_fetch_req(kafka_out *o, int16_t v, const void *in)
{
    kafka_encode_fetch_req(o, v, in);
}

static const struct {
    dec_fn dec;
    enc_fn enc;
    int16_t min, max;
} kinds[] = {
    {dec_fetch_resp, enc_fetch_resp, 4, 17},
    {dec_le_req, enc_le_req, 0, 4},
    {dec_le_resp, enc_le_resp, 0, 4},
    {dec_fetch_req, enc_fetch_req, 4, 17},
};

/* Big enough for any of the decoded structs. */
typedef union {
    kafka_fetch_resp fetch_resp;
    kafka_fetch_req fetch_req;
    kafka_leader_epoch_req le_req;
    kafka_leader_epoch_resp le_resp;
} any_msg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t k = data[0] % (sizeof(kinds) / sizeof(kinds[0]));
    int16_t v = (int16_t)(kinds[k].min + data[1] % (kinds[k].max - kinds[k].min + 1));
    td_arena a;
    td_arena_init(&a);
    kafka_reader r;
    kr_init(&r, data + 2, size - 2, &a);
    any_msg m1, m2;
    kafka_out o1, o2;
    ko_init(&o1);
    ko_init(&o2);
    if (kinds[k].dec(&r, v, &m1) == 0) {
        kinds[k].enc(&o1, v, &m1);
        if (o1.err)
            abort();
        kr_init(&r, o1.mem.p, o1.mem.len, &a);
        if (kinds[k].dec(&r, v, &m2) != 0 || r.off != o1.mem.len)
            abort(); /* what we wrote, we must read */
        kinds[k].enc(&o2, v, &m2);
        if (o2.err || o2.mem.len != o1.mem.len || memcmp(o1.mem.p, o2.mem.p, o1.mem.len) != 0)
            abort();
    }
    ko_free(&o1);
    ko_free(&o2);
    td_arena_free(&a);
    return 0;
}
