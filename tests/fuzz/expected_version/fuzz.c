/* libFuzzer target: the text of a Kafka record's tidings-expected-version header
 * (broker_expected_version_parse, docs/event-sourcing.md#kafka) and of a batch's
 * tidings-condition-after header (broker_condition_after_parse). Any bytes are either refused
 * with TD_EINVAL or give one of the three names or an offset >= 0 (the position: no_stream or
 * an offset, and the same as the version's parse), never reading past size. */
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *c = malloc(size ? size : 1); /* exact size: ASan sees a read past the end */
    if (!c)
        return 0;
    if (size)
        memcpy(c, data, size);
    int64_t v = -100;
    int rc = broker_expected_version_parse(c, size, &v);
    if (rc == 0 && !(v >= 0 || v == TD_VERSION_ANY || v == TD_VERSION_NO_STREAM ||
                     v == TD_VERSION_EXISTS))
        abort();
    if (rc != 0 && (rc != TD_EINVAL || v != -100))
        abort();
    int64_t a = -100;
    int arc = broker_condition_after_parse(c, size, &a);
    if (arc == 0 && !(a >= -1 && rc == 0 && a == v))
        abort();
    if (arc != 0 && (arc != TD_EINVAL || a != -100 ||
                     (rc == 0 && v != TD_VERSION_ANY && v != TD_VERSION_EXISTS)))
        abort();
    free(c);
    return 0;
}
