/*  =========================================================================
    cbus_keyfile - CurveZMQ keypair files and allowlists

    Keypair files in CZMQ's zcert secret format, mode 0600, made once and
    never replaced; allowlists of public keys, one Z85 key (40
    characters) a line, with blank lines and comments (# at the start of
    a line or after a blank: Z85 itself has '#'). Used by cbus_endpoint
    and `chainbus service-key`.
    =========================================================================
*/
#ifndef CBUS_KEYFILE_H_INCLUDED
#define CBUS_KEYFILE_H_INCLUDED

//  True if text is a Z85 public or secret key (40 characters).
bool
    cbus_keyfile_key_valid (const char *text);
//  Load the keypair in path, making it (mode 0600, never replaced) if
//  make and there is none; *made (may be NULL) tells which. NULL with a
//  reason: not a keypair, readable by others, the public key not the
//  secret key's. Caller destroys.
zcert_t *
    cbus_keyfile_load (const char *path, bool make, bool *made, char *reason);
//  The keys of an allowlist file, as a set (Z85 key -> ""). NULL with a
//  reason naming the line at fault. Caller destroys.
zhashx_t *
    cbus_keyfile_allowlist (const char *path, char *reason);

void
    cbus_keyfile_test (bool verbose);

#endif
