/*
 * murmur2.c: Kafka's Utils.murmur2, the hash of its default partitioner. Kafka reads the key in
 * little-endian 4-byte groups with seed 0x9747b28c and returns a Java int; the partition is
 * (hash & 0x7fffffff) % partitions. Arithmetic is done on uint32_t so that overflow wraps as in
 * Java without undefined behaviour. Also td_hash64, tidings' own 64-bit hash.
 */
#include "base/base.h"

int32_t td_murmur2(const void *key, size_t n)
{
    const uint8_t *d = key;
    const uint32_t m = 0x5bd1e995u;
    uint32_t h = 0x9747b28cu ^ (uint32_t)n;
    size_t n4 = n / 4;
    for (size_t i = 0; i < n4; i++) {
        const uint8_t *q = d + i * 4;
        uint32_t k = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
                     (uint32_t)q[3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    const uint8_t *t = d + (n & ~(size_t)3);
    switch (n % 4) {
    case 3:
        h ^= (uint32_t)t[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)t[1] << 8;
        /* fall through */
    case 1:
        h ^= t[0];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)h;
}

int32_t td_partition_for_key(const void *key, size_t key_len, int32_t partitions)
{
    if (partitions <= 0)
        return 0;
    uint32_t h = (uint32_t)td_murmur2(key, key_len) & 0x7fffffffu;
    return (int32_t)(h % (uint32_t)partitions);
}

uint64_t td_hash64(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}
