/* support.c: shared test helpers live in this folder (see test.h and the files beside it). */
#include "test.h"

int td_test_support_linked(void);
int td_test_support_linked(void)
{
    return 1;
}
