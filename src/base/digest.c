/*
 * digest.c: the 128-bit digest of a record key, for the log cleaner's offset map and the key
 * index of compacted topics (docs/storage.md#compaction). XXH3-128 (libxxhash): keys are hashed
 * once per record per cleaning pass, so the digest must cost nanoseconds, not the microsecond a
 * cryptographic hash costs through OpenSSL's EVP interface; 128 bits make an accidental collision
 * as unlikely as Kafka's MD5 map does. Readers of the key index compare the key itself.
 */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/base.h"

void td_key_digest(const void *key, size_t n, uint8_t out[TD_KEY_DIGEST_LEN])
{
    XXH128_hash_t h = XXH3_128bits(key, n);
    td_store_be64(out, h.high64);
    td_store_be64(out + 8, h.low64);
}

/* The seed must never change: the key index files hold these digests. */
#define TAG_SEED 0x7461672d74696467ull /* "tag-tidg" */

void td_tag_digest(const void *tag, size_t n, uint8_t out[TD_KEY_DIGEST_LEN])
{
    XXH128_hash_t h = XXH3_128bits_withSeed(tag, n, TAG_SEED);
    td_store_be64(out, h.high64);
    td_store_be64(out + 8, h.low64);
}
