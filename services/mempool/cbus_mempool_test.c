/*  =========================================================================
    cbus_mempool_test - the mempool's self-test (written next)
    =========================================================================
*/
#include "cbus_mempool_private.h"

void
cbus_mempool_test (bool verbose)
{
    (void) verbose;
}
