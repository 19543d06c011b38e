/*  =========================================================================
    cbus_code - machine-readable codes of every refusal
    =========================================================================
*/
#include "cbus.h"

typedef struct {
    const char *name;           //  On the wire and in JSON
    const char *meaning;        //  For docs and --help
} s_code_t;

static const s_code_t s_codes [CBUS_CODE_COUNT] = {
#define S_CODE_ENTRY(constant, name, meaning) { name, meaning },
    CBUS_CODES (S_CODE_ENTRY)
#undef S_CODE_ENTRY
};

const char *
cbus_code_name (cbus_code_t code)
{
    return (unsigned) code < CBUS_CODE_COUNT ? s_codes [code].name
                                             : s_codes [CBUS_CODE_INTERNAL].name;
}

const char *
cbus_code_meaning (cbus_code_t code)
{
    return (unsigned) code < CBUS_CODE_COUNT ? s_codes [code].meaning
                                             : s_codes [CBUS_CODE_INTERNAL].meaning;
}

cbus_code_t
cbus_code_from_name (const char *name, size_t size)
{
    for (int code = 0; code < CBUS_CODE_COUNT; code++)
        if (strlen (s_codes [code].name) == size && memcmp (s_codes [code].name, name, size) == 0)
            return (cbus_code_t) code;
    return CBUS_CODE_INTERNAL;
}

void
cbus_code_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_code: ");
    assert (streq (cbus_code_name (CBUS_CODE_ORPHAN), "orphan"));
    assert (streq (cbus_code_name ((cbus_code_t) 999), "internal"));
    assert (cbus_code_from_name ("bad_pow", 7) == CBUS_CODE_BAD_POW);
    assert (cbus_code_from_name ("bad_powder", 7) == CBUS_CODE_BAD_POW);
    assert (cbus_code_from_name ("no_such_code", 12) == CBUS_CODE_INTERNAL);
    //  Every name is unique and round-trips.
    for (int code = 0; code < CBUS_CODE_COUNT; code++) {
        const char *name = cbus_code_name ((cbus_code_t) code);
        assert (cbus_code_from_name (name, strlen (name)) == (cbus_code_t) code);
        assert (*cbus_code_meaning ((cbus_code_t) code));
    }
    if (verbose)
        printf ("OK\n");
}
