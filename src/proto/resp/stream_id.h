/*
 * stream_id.h: the text of Redis stream IDs (docs/redis.md#stream-ids), parsed and written as
 * Redis 7.0 does. Pure functions over buffers (no connection, no broker), unit-tested on
 * truncated and overflowing input.
 */
#ifndef TD_RESP_STREAM_ID_H
#define TD_RESP_STREAM_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* Flags of resp_sid_parse. */
enum {
    RESP_SID_STRICT = 1,  /* "-" and "+" are refused (every command but the range bounds) */
    RESP_SID_MS_STAR = 2, /* "<ms>-*" is accepted (XADD), with *seq_given false */
};

/*
 * Parses a stream ID as Redis 7.0's streamGenericParseIDOrReply: "-" (0-0) and "+" (the largest
 * ID) unless strict; "<ms>" (seq missing_seq); "<ms>-<seq>"; "<ms>-*" with RESP_SID_MS_STAR.
 * Each number is what Redis's string2ull takes: a canonical decimal up to 2^63-1, or else what
 * C's strtoull takes whole (leading white space, a sign, leading zeros; a minus sign wraps modulo
 * 2^64), up to 2^64-1. The argument is read up to its first NUL byte, and more than 127 bytes is
 * invalid, as in Redis. False when invalid (Redis's "Invalid stream ID specified as stream
 * command argument"). seq_given (may be NULL) is false only for "<ms>-*".
 */
bool resp_sid_parse(const uint8_t *p, size_t n, uint64_t missing_seq, int flags, td_sid *id,
                    bool *seq_given);

/* The ID as Redis writes it, "<ms>-<seq>", into buf (at least RESP_SID_TEXT_MAX bytes, not
 * NUL-terminated); returns the length. */
#define RESP_SID_TEXT_MAX 41
size_t resp_sid_format(char *buf, td_sid id);

/* The ID before *id, into *id; false (and *id unchanged) for 0-0 (Redis's streamDecrID). */
bool resp_sid_prev(td_sid *id);

/* A range bound of XRANGE, XREVRANGE, XPENDING and XAUTOCLAIM (Redis's
 * streamParseIntervalIDOrReply, then the increment or decrement of an exclusive bound): "-",
 * "+", an ID whose missing seq is 0 for a start and the largest for an end, or "(" and a strict
 * ID, excluded. NULL with the inclusive ID in *id, or Redis's error reply text ("ERR ...") when the
 * bound is invalid or an exclusive bound has no ID beyond it. */
const char *resp_sid_bound(const uint8_t *p, size_t n, bool is_start, td_sid *id);

#endif /* TD_RESP_STREAM_ID_H */
