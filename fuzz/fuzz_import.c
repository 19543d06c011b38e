/*  =========================================================================
    fuzz_import - the file `chainbus import` reads (the GET /chain shape,
    as `chainbus export` writes it): cli/cbus_import.c compiled in, its
    cbus_import_run given each input as the file, on a scratch data
    folder of network dev at the default proof of work. The seed corpus
    is a real chain of that network, so inputs get past the genesis check
    to the blocks and their transactions (cbus_block_new_from_json,
    cbus_tx_new_from_json) and the chain store's rules. A chain that
    imports is removed again for the next input.
    =========================================================================
*/
#include "fuzz.h"
#include "cbus_import.h"
#include <ftw.h>

static cbus_config_t *s_config;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc; (void) argv;
    fuzz_init ();
    FUZZ_CHECK (sodium_init () >= 0);
    char *args [] = { (char *) "fuzz_import", (char *) "--data-dir",
                      (char *) fuzz_scratch ("data"), (char *) "--network", (char *) "dev",
                      (char *) "--pow-bits", (char *) "0x1f00ffff", NULL };
    char reason [CBUS_REASON_MAX];
    s_config = cbus_config_new (7, args, reason);
    FUZZ_CHECK (s_config);
    return 0;
}

static int
s_remove_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file ("import.json", data, size, 0600);
    char copy [512];
    snprintf (copy, sizeof (copy), "%s", path);
    int rc = cbus_import_run (s_config, copy);
    char *chain = cbus_config_path (s_config, "chain");
    char *temp = cbus_config_path (s_config, "chain.import");
    struct stat st;
    //  Never a half-made chain left behind.
    FUZZ_CHECK (stat (temp, &st) != 0);
    FUZZ_CHECK ((rc == 0) == (stat (chain, &st) == 0));
    if (rc == 0)
        FUZZ_CHECK (nftw (chain, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0);
    zstr_free (&chain);
    zstr_free (&temp);
    return 0;
}
