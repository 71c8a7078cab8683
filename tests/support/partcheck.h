/* partcheck.h: reading a partition back in tests. */
#ifndef TD_TEST_PARTCHECK_H
#define TD_TEST_PARTCHECK_H

#include "storage/storage.h"

/*
 * Reads partition p from offset `from` to its high watermark through part_read, checking that
 * every batch is valid (deep, CRC included), offsets are dense, ranges end where they say, and
 * the event at offset n holds the value "<prefix><n>". Fails the test otherwise. Returns the
 * number of events read.
 */
int64_t check_part_values(td_part *p, int64_t from, const char *prefix);

#endif
