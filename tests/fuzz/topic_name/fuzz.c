/* libFuzzer target: topic names and the Redis keys they hold (base/topic_name.c). The input is
 * taken twice: as a key, whose name (when it fits) must be valid and decode to the key again;
 * and as a name, which must be valid exactly when it decodes, and then be the name of the key
 * it decodes to (one key, one name). Byte-wise escaping must agree with the key mapping outside
 * its three whole-name cases, and the check must never read past the input. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[TD_TOPIC_NAME_MAX + 1], again[TD_TOPIC_NAME_MAX + 1];
    uint8_t key[TD_TOPIC_NAME_MAX];
    const char *why;
    size_t at;
    /* As a key. */
    ssize_t n = td_key_to_name(data, size, name);
    if (n >= 0) {
        if ((size_t)n != strlen(name) || td_name_check(name, (size_t)n, &why, &at) != 0)
            abort();
        ssize_t kn = td_name_to_key(name, (size_t)n, key, sizeof(key));
        if (kn != (ssize_t)size || (size && memcmp(key, data, size)))
            abort();
    } else {
        size_t need = 0;
        for (size_t i = 0; i < size; i++)
            need += td_name_plain(data[i]) ? 1 : 3;
        if (need <= TD_TOPIC_NAME_MAX)
            abort(); /* it would have fit */
    }
    bool special = size == 0 || (size == 1 && data[0] == '.') ||
                   (size == 2 && data[0] == '.' && data[1] == '.');
    char esc[3 * 64 + 1];
    if (!special && size <= 64 && n >= 0) {
        ssize_t en = td_name_escape(data, size, esc, sizeof(esc));
        if (en != n || memcmp(esc, name, (size_t)n))
            abort();
    }
    /* As a name (a heap copy of exactly its length, so that ASan sees any over-read). */
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    bool valid = td_name_check(copy, size, &why, &at) == 0;
    if (!valid && (!why || at > size))
        abort();
    ssize_t kn = td_name_to_key(copy, size, key, sizeof(key));
    if (valid != (kn >= 0))
        abort();
    if (valid) {
        ssize_t m = td_key_to_name(key, (size_t)kn, again);
        if (m != (ssize_t)size || memcmp(again, copy, size))
            abort();
    }
    free(copy);
    return 0;
}
