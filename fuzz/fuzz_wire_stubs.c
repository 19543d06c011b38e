/*  =========================================================================
    fuzz_wire_stubs - what cbus_peersync_wire.c links to outside itself

    Compiled with the wire file into the harnesses and the seed program,
    which take nothing else of peersync: only peersync_wire_test calls
    these, and nothing here calls that.
    =========================================================================
*/
#include "fuzz.h"
#include "cbus_peersync_private.h"

bool
peersync_refusal_blames_peer (cbus_code_t code)
{
    (void) code;
    abort ();
}

bool
peersync_refusal_is_local (cbus_code_t code)
{
    (void) code;
    abort ();
}

