/*
 * gaplog_tool: writes the standard gapped partition of tests/support/gaplog.h into a partition
 * directory, for integration tests that start a broker on a compacted log without the cleaner:
 *   gaplog_tool DATA/topics/<topic>/<partition>
 * Built only for tests; the broker must not be running on that directory.
 */
#include <stdio.h>

#include "support/gaplog.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gaplog_tool PARTITION-DIRECTORY\n");
        return 2;
    }
    int rc = gaplog_write_standard(argv[1]);
    if (rc) {
        fprintf(stderr, "gaplog_tool: %s: %s\n", argv[1], td_strerror(rc));
        return 1;
    }
    return 0;
}
