/*  =========================================================================
    cbus_service_key - `chainbus service-key`: the keys of tcp endpoints
    =========================================================================
*/
#include "cbus_service_key.h"
#include <sys/stat.h>

int
cbus_service_key_run (cbus_config_t *config)
{
    char reason [CBUS_REASON_MAX];
    size_t count = cbus_config_arg_count (config);
    const char *verb = count ? cbus_config_arg (config, 0) : NULL;
    const char *file = count > 1 ? cbus_config_arg (config, 1) : NULL;
    bool make = false;
    char *path = NULL;
    if (count == 0) {
        //  The node's own: made on first start, or now.
        if (cbus_config_make_dirs (config, reason)) {
            fprintf (stderr, "chainbus service-key: %s\n", reason);
            return 2;
        }
        path = cbus_endpoint_service_cert_path (config);
        make = true;
    }
    else
    if (count == 2 && (streq (verb, "new") || streq (verb, "show"))) {
        struct stat st;
        if (streq (verb, "new") && stat (file, &st) == 0) {
            fprintf (stderr, "chainbus service-key: %s exists: a keypair is never replaced\n",
                     file);
            return 2;
        }
        path = strdup (file);
        make = streq (verb, "new");
    }
    else {
        fprintf (stderr, "usage: chainbus service-key [flags] | service-key new FILE | "
                         "service-key show FILE\n");
        return 2;
    }
    zcert_t *cert = path ? cbus_keyfile_load (path, make, NULL, reason) : NULL;
    if (!cert)
        fprintf (stderr, "chainbus service-key: %s\n", path ? reason : "out of memory");
    else
        printf ("%s\n", zcert_public_txt (cert));
    int rc = cert ? 0 : 2;
    zcert_destroy (&cert);
    free (path);
    return rc;
}
