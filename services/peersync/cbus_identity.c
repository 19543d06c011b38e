/*  =========================================================================
    cbus_identity - this node's long-term CurveZMQ keypair and node id
    =========================================================================
*/
#include "cbus_identity.h"
#include <sys/stat.h>
#include <sodium.h>

struct _cbus_identity_t {
    char public_key [41];       //  Z85
    char secret_key [41];       //  Z85
    char node_id [17];          //  Hex of sha256 (public key) [0..8]
};

static void
s_derive_id (cbus_identity_t *self)
{
    uint8_t raw [32], hash [CBUS_HASH_BYTES];
    zmq_z85_decode (raw, self->public_key);
    cbus_hash_sha256 (raw, sizeof (raw), hash);
    cbus_hex_encode (hash, 8, self->node_id);
}

cbus_identity_t *
cbus_identity_new (const char *path, char *reason)
{
    cbus_identity_t *self = (cbus_identity_t *) zmalloc (sizeof (cbus_identity_t));
    struct stat st;
    if (stat (path, &st) == 0) {
        //  Read, then parsed: zconfig_load leaks its file when the text
        //  does not parse (CZMQ 4.2; found by fuzz/). A key file is two
        //  short lines.
        zchunk_t *chunk = st.st_size <= 65536 ? zchunk_slurp (path, 65536) : NULL;
        zconfig_t *config = chunk ? zconfig_chunk_load (chunk) : NULL;
        zchunk_destroy (&chunk);
        const char *public_key = config ? zconfig_get (config, "public", "") : "";
        const char *secret_key = config ? zconfig_get (config, "secret", "") : "";
        uint8_t raw [32];
        if (strlen (public_key) != 40 || strlen (secret_key) != 40
        ||  !zmq_z85_decode (raw, public_key) || !zmq_z85_decode (raw, secret_key)) {
            snprintf (reason, CBUS_REASON_MAX, "node key %s is not a valid keypair", path);
            zconfig_destroy (&config);
            free (self);
            return NULL;
        }
        snprintf (self->public_key, sizeof (self->public_key), "%s", public_key);
        snprintf (self->secret_key, sizeof (self->secret_key), "%s", secret_key);
        zconfig_destroy (&config);
        if ((st.st_mode & 077) != 0)
            zsys_warning ("node key %s is readable by others: chmod 600 it", path);
    }
    else {
        if (zmq_curve_keypair (self->public_key, self->secret_key)) {
            snprintf (reason, CBUS_REASON_MAX, "cannot make a CurveZMQ keypair");
            free (self);
            return NULL;
        }
        char *text = zsys_sprintf ("#   chainbus node key: the secret authenticates this node's links.\n"
                                   "#   Keep it private (mode 0600) and back it up with the data.\n"
                                   "public = \"%s\"\nsecret = \"%s\"\n",
                                   self->public_key, self->secret_key);
        int rc = cbus_file_write_atomic (path, text, strlen (text));
        zstr_free (&text);
        if (rc) {
            snprintf (reason, CBUS_REASON_MAX, "cannot write the node key %s", path);
            free (self);
            return NULL;
        }
        s_derive_id (self);
        zsys_info ("created node key node_id=%s path=%s", self->node_id, path);
        return self;
    }
    s_derive_id (self);
    return self;
}

void
cbus_identity_destroy (cbus_identity_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        sodium_memzero ((*self_p)->secret_key, sizeof ((*self_p)->secret_key));
        free (*self_p);
        *self_p = NULL;
    }
}

const char *
cbus_identity_public (cbus_identity_t *self)
{
    return self->public_key;
}

const char *
cbus_identity_node_id (cbus_identity_t *self)
{
    return self->node_id;
}

void
cbus_identity_apply_server (cbus_identity_t *self, zsock_t *socket)
{
    zsock_set_curve_server (socket, 1);
    zsock_set_curve_publickey (socket, self->public_key);
    zsock_set_curve_secretkey (socket, self->secret_key);
}

void
cbus_identity_apply_client (cbus_identity_t *self, zsock_t *socket, const char *server_key)
{
    zsock_set_curve_serverkey (socket, server_key);
    zsock_set_curve_publickey (socket, self->public_key);
    zsock_set_curve_secretkey (socket, self->secret_key);
}

void
cbus_identity_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_identity: ");
    char dir [] = "/tmp/cbus_identity_test_XXXXXX";
    assert (mkdtemp (dir));
    char path [PATH_MAX], reason [CBUS_REASON_MAX];
    snprintf (path, sizeof (path), "%s/node.key", dir);
    cbus_identity_t *first = cbus_identity_new (path, reason);
    assert (first && strlen (cbus_identity_node_id (first)) == 16);
    struct stat st;
    assert (stat (path, &st) == 0 && (st.st_mode & 0777) == 0600);
    cbus_identity_t *again = cbus_identity_new (path, reason);
    assert (again && streq (cbus_identity_public (again), cbus_identity_public (first)));
    assert (streq (cbus_identity_node_id (again), cbus_identity_node_id (first)));
    cbus_identity_destroy (&again);

    //  An encrypted link between two identities.
    char other_path [PATH_MAX];
    snprintf (other_path, sizeof (other_path), "%s/other.key", dir);
    cbus_identity_t *other = cbus_identity_new (other_path, reason);
    zsock_t *server = zsock_new (ZMQ_ROUTER);
    cbus_identity_apply_server (first, server);
    int port = zsock_bind (server, "tcp://127.0.0.1:*");
    assert (port > 0);
    zsock_t *client = zsock_new (ZMQ_DEALER);
    cbus_identity_apply_client (other, client, cbus_identity_public (first));
    zsock_connect (client, "tcp://127.0.0.1:%d", port);
    zstr_send (client, "hello");
    zmsg_t *msg = zmsg_recv (server);
    assert (msg && zmsg_size (msg) == 2);
    zmsg_destroy (&msg);
    zsock_destroy (&client);
    zsock_destroy (&server);
    cbus_identity_destroy (&other);
    cbus_identity_destroy (&first);

    //  A damaged key file is refused.
    FILE *file = fopen (path, "w");
    fprintf (file, "public = \"short\"\n");
    fclose (file);
    assert (cbus_identity_new (path, reason) == NULL && strstr (reason, "not a valid"));
    unlink (path);
    unlink (other_path);
    rmdir (dir);
    if (verbose)
        printf ("OK\n");
}
