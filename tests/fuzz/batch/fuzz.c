/* libFuzzer target: the record batch decoder. Validation (deep, with decompression capped at
 * 1 MiB) and a full read of every record must never crash or leak, whatever the input. */
#include <stdlib.h>
#include <string.h>

#include "storage/batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const uint8_t *data, size_t size)
{
    td_batch_header h;
    (void)batch_validate(data, size, true, 1u << 20, &h);
    td_batch_reader r;
    batch_reader_init(&r);
    if (batch_reader_open(&r, data, size, 1u << 20) == 0) {
        td_record rec;
        while (batch_reader_next(&r, &rec) == 1) {
            for (size_t i = 0; i < rec.header_count; i++)
                (void)rec.headers[i].key.n;
        }
    }
    batch_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size);
    /* Most random inputs stop at the CRC; a second pass with the length and CRC fixed up
     * lets the fuzzer reach the record parser and the decompressors. */
    if (size >= TD_BATCH_HEADER_SIZE && size < (1u << 20)) {
        uint8_t *c = malloc(size);
        if (!c)
            return 0;
        memcpy(c, data, size);
        td_store_be32(c + 8, (uint32_t)(size - TD_BATCH_LOG_OVERHEAD));
        c[16] = TD_BATCH_MAGIC;
        batch_update_crc(c, size);
        run(c, size);
        free(c);
    }
    return 0;
}
