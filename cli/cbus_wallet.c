/*  =========================================================================
    cbus_wallet - `chainbus key` and `chainbus tx`: a wallet on the command
    line
    =========================================================================
*/
#include "cbus_wallet.h"
#include "cbus_http.h"
#include <sodium.h>

//  Where tx send, get and open go without --node.
#define S_DEFAULT_NODE      "http://localhost:5000"
//  A node that does not accept the connection in 5 s is unreachable; one
//  that does not answer in 30 s has failed (a POST is answered once the
//  transaction is on disk, within the gateway's own timeouts). The
//  largest answer read: a transaction of 256 KiB, as JSON.
static const cbus_http_limits_t s_limits = { 5000, 30000, 4 * 1024 * 1024 };
//  Largest --data-file read: a transaction cannot be larger.
#define S_DATA_MAX_BYTES    CBUS_TX_MAX_BYTES

//  Exit codes: a wrong command line, and everything else.
#define S_EXIT_USAGE        2
#define S_EXIT_FAILED       1

typedef enum {
    S_KEY_NEW, S_KEY_SHOW, S_TX_SIGN, S_TX_SEND, S_TX_GET, S_TX_OPEN, S_COMMAND_COUNT
} s_command_t;

#define S_BIT(command) (1u << (command))

static const struct {
    const char *group;          //  "key" or "tx"
    const char *verb;           //  "new", "sign"...
    const char *positional;     //  Name of the one argument it takes, or NULL
} s_commands [S_COMMAND_COUNT] = {
    { "key", "new",  "FILE" },
    { "key", "show", "FILE" },
    { "tx",  "sign", NULL },
    { "tx",  "send", NULL },
    { "tx",  "get",  "TXID" },
    { "tx",  "open", "TXID" },
};

static const struct {
    const char *name;           //  Without the leading --
    bool takes_value;           //  --name VALUE or --name=VALUE
    unsigned commands;          //  S_BIT of every command that takes it
} s_flags [] = {
    { "key",        true,  S_BIT (S_TX_SIGN) | S_BIT (S_TX_SEND) | S_BIT (S_TX_OPEN) },
    { "to",         true,  S_BIT (S_TX_SIGN) | S_BIT (S_TX_SEND) },
    { "users",      true,  S_BIT (S_TX_SIGN) | S_BIT (S_TX_SEND) },
    { "data",       true,  S_BIT (S_TX_SIGN) | S_BIT (S_TX_SEND) },
    { "data-file",  true,  S_BIT (S_TX_SIGN) | S_BIT (S_TX_SEND) },
    { "seal",       false, S_BIT (S_TX_SIGN) | S_BIT (S_TX_SEND) },
    { "server-key", true,  S_BIT (S_TX_SIGN) | S_BIT (S_TX_SEND) },
    { "node",       true,  S_BIT (S_TX_SEND) | S_BIT (S_TX_GET) | S_BIT (S_TX_OPEN) },
};
#define S_FLAG_COUNT (sizeof (s_flags) / sizeof (s_flags [0]))

//  One command line, parsed. Strings are borrowed from argv.
typedef struct {
    s_command_t command;        //  Which command
    char name [16];             //  "tx send", for messages
    const char *positional;     //  FILE or TXID
    const char *key_path;       //  --key
    const char *to;             //  --to
    zlist_t *users;             //  --users values, each split at commas (owned)
    const char *data;           //  --data
    const char *data_file;      //  --data-file
    const char *server_key;     //  --server-key
    const char *node;           //  --node
    bool seal;                  //  --seal
} s_args_t;

void
cbus_wallet_print_usage (FILE *stream)
{
    fprintf (stream,
        "  key new FILE             make an Ed25519 keypair, write it to FILE (mode 0600,\n"
        "                           never replaced) and print its public key\n"
        "  key show FILE            print the public key of the keypair in FILE\n"
        "  tx sign --key FILE --to PUBKEY (--data JSON | --data-file F) [--users U[,U...]]\n"
        "          [--seal] [--server-key S]\n"
        "                           build a transaction to PUBKEY, sign it with FILE's key\n"
        "                           and print it (one line of JSON, for POST\n"
        "                           /transactions/new); --seal encrypts the data so that\n"
        "                           only PUBKEY's key opens it; users default to the\n"
        "                           sender's public key; F - is stdin\n"
        "  tx send (the flags of tx sign) [--node URL]\n"
        "                           the same, submitted to the node; prints the txid\n"
        "  tx get TXID [--node URL] print the node's answer for a transaction\n"
        "  tx open TXID --key FILE [--node URL]\n"
        "                           print a sealed transaction's data, opened with FILE's key\n"
        "                           (--node default " S_DEFAULT_NODE ")\n");
}

//  --------------------------------------------------------------------------
//  The command line

static int
s_args_parse (s_args_t *self, int argc, char **argv, char *reason)
{
    if (argc < 2) {
        snprintf (self->name, sizeof (self->name), "%s", argv [0]);
        return cbus_fail (reason, "which %s command? (see chainbus --help)", argv [0]);
    }
    int found = -1;
    for (int index = 0; index < S_COMMAND_COUNT; index++)
        if (streq (argv [0], s_commands [index].group) && streq (argv [1], s_commands [index].verb))
            found = index;
    snprintf (self->name, sizeof (self->name), "%s", argv [0]);
    if (found < 0)
        return cbus_fail (reason, "unknown command '%s %.32s' (see chainbus --help)",
                          argv [0], argv [1]);
    self->command = (s_command_t) found;
    snprintf (self->name, sizeof (self->name), "%s %s", argv [0], argv [1]);
    for (int arg = 2; arg < argc; arg++) {
        const char *word = argv [arg];
        if (strncmp (word, "--", 2) != 0 || word [2] == 0) {
            if (!s_commands [self->command].positional || self->positional)
                return cbus_fail (reason, "unexpected argument '%.64s'", word);
            self->positional = word;
            continue;
        }
        const char *name = word + 2;
        const char *equals = strchr (name, '=');
        size_t length = equals ? (size_t) (equals - name): strlen (name);
        size_t flag = 0;
        while (flag < S_FLAG_COUNT
            && !(strlen (s_flags [flag].name) == length
                 && strncmp (s_flags [flag].name, name, length) == 0))
            flag++;
        if (flag == S_FLAG_COUNT)
            return cbus_fail (reason, "unknown flag --%.*s", (int) (length > 32 ? 32: length), name);
        if (!(s_flags [flag].commands & S_BIT (self->command)))
            return cbus_fail (reason, "--%s is not a flag of %s", s_flags [flag].name, self->name);
        const char *value = NULL;
        if (s_flags [flag].takes_value) {
            if (equals)
                value = equals + 1;
            else
            if (arg + 1 < argc)
                value = argv [++arg];
            else
                return cbus_fail (reason, "--%s needs a value", s_flags [flag].name);
        }
        else
        if (equals)
            return cbus_fail (reason, "--%s takes no value", s_flags [flag].name);

        const char *flag_name = s_flags [flag].name;
        const char **slot = NULL;
        if (streq (flag_name, "users")) {
            //  U1,U2 and repeated --users both make a list.
            const char *start = value;
            while (true) {
                const char *comma = strchr (start, ',');
                size_t size = comma ? (size_t) (comma - start): strlen (start);
                if (size == 0)
                    return cbus_fail (reason, "--users: an empty user name");
                char *user = strndup (start, size);
                zlist_append (self->users, user);       //  Copied: autofree
                free (user);
                if (!comma)
                    break;
                start = comma + 1;
            }
        }
        else
        if (streq (flag_name, "seal")) {
            if (self->seal)
                return cbus_fail (reason, "--seal given twice");
            self->seal = true;
        }
        else {
            slot = streq (flag_name, "key")        ? &self->key_path
                 : streq (flag_name, "to")         ? &self->to
                 : streq (flag_name, "data")       ? &self->data
                 : streq (flag_name, "data-file")  ? &self->data_file
                 : streq (flag_name, "server-key") ? &self->server_key
                 :                                   &self->node;
            if (*slot)
                return cbus_fail (reason, "--%s given twice", flag_name);
            *slot = value;
        }
    }
    const char *positional = s_commands [self->command].positional;
    if (positional && !self->positional)
        return cbus_fail (reason, "%s is required: chainbus %s %s", positional, self->name,
                          positional);
    if ((self->command == S_TX_SIGN || self->command == S_TX_SEND || self->command == S_TX_OPEN)
    &&  !self->key_path)
        return cbus_fail (reason, "--key FILE is required");
    if (self->command == S_TX_SIGN || self->command == S_TX_SEND) {
        if (!self->to)
            return cbus_fail (reason, "--to PUBKEY is required (the receiver's public key)");
        if (!self->data == !self->data_file)
            return cbus_fail (reason, "give the data with one of --data JSON or --data-file F");
    }
    if (!self->node)
        self->node = S_DEFAULT_NODE;
    return 0;
}

//  --------------------------------------------------------------------------
//  The node

//  An answer's failure as a reason, with its code: "URL answered 404
//  not_found: Transaction not found", or why no answer came. Returns -1.
static int
s_refused (cbus_http_reply_t *reply, const char *node, char *reason)
{
    if (reply->status == 0)
        return cbus_fail (reason, "%s", reply->reason);
    return cbus_fail (reason, "%s answered %ld %s: %s", node, reply->status,
                      cbus_code_name (reply->code), reply->reason);
}

//  Check a node URL and drop trailing slashes (into node, PATH_MAX).
static int
s_node_url (const char *given, char *node, char *reason)
{
    if (strncmp (given, "http://", 7) != 0 && strncmp (given, "https://", 8) != 0)
        return cbus_fail (reason, "--node must be an http:// or https:// URL, not '%.64s'", given);
    if (strlen (given) >= PATH_MAX - 128)
        return cbus_fail (reason, "--node is too long");
    snprintf (node, PATH_MAX, "%s", given);
    size_t length = strlen (node);
    while (length > 0 && node [length - 1] == '/')
        node [--length] = 0;
    return 0;
}

//  --------------------------------------------------------------------------
//  Building and signing

//  A whole small file (or stdin for "-"), NUL-terminated; caller frees.
static char *
s_read_data_file (const char *path, size_t *size_p, char *reason)
{
    bool is_stdin = streq (path, "-");
    FILE *file = is_stdin ? stdin: fopen (path, "rb");
    if (!file) {
        cbus_fail (reason, "cannot read data file %s: %s", path, strerror (errno));
        return NULL;
    }
    char *text = (char *) malloc (S_DATA_MAX_BYTES + 2);
    assert (text);
    size_t size = fread (text, 1, S_DATA_MAX_BYTES + 1, file);
    if (ferror (file)) {
        cbus_fail (reason, "cannot read data file %s: %s", path, strerror (errno));
        zstr_free (&text);
    }
    else
    if (size > S_DATA_MAX_BYTES) {
        cbus_fail (reason, "data file %s is larger than a transaction (%d bytes)", path,
                   S_DATA_MAX_BYTES);
        zstr_free (&text);
    }
    else {
        text [size] = 0;
        *size_p = size;
    }
    if (!is_stdin)
        fclose (file);
    return text;
}

//  The data value from --data or --data-file (new reference).
static json_t *
s_data_value (s_args_t *args, char *reason)
{
    char parse_reason [CBUS_REASON_MAX];
    json_t *value = NULL;
    if (args->data) {
        value = cbus_json_parse (args->data, strlen (args->data), parse_reason);
        if (!value)
            cbus_fail (reason, "--data is not JSON: %s", parse_reason);
        return value;
    }
    size_t size = 0;
    char *text = s_read_data_file (args->data_file, &size, reason);
    if (!text)
        return NULL;
    value = cbus_json_parse (text, size, parse_reason);
    if (!value)
        cbus_fail (reason, "data file %s is not JSON: %s", args->data_file, parse_reason);
    free (text);
    return value;
}

//  A JSON string from a command-line value, which may not be UTF-8.
static json_t *
s_string (const char *text, const char *what, char *reason)
{
    json_t *value = json_string (text);
    if (!value)
        cbus_fail (reason, "%s is not valid UTF-8", what);
    return value;
}

//  The users value: the sender's key alone by default, one string for
//  one user, a list for more.
static json_t *
s_users_value (s_args_t *args, cbus_key_t *key, char *reason)
{
    if (zlist_size (args->users) == 0)
        return json_string (cbus_key_public_hex (key));
    if (zlist_size (args->users) == 1)
        return s_string ((const char *) zlist_first (args->users), "--users", reason);
    json_t *list = json_array ();
    for (const char *user = (const char *) zlist_first (args->users); user;
         user = (const char *) zlist_next (args->users)) {
        json_t *value = s_string (user, "--users", reason);
        if (!value) {
            json_decref (list);
            return NULL;
        }
        json_array_append_new (list, value);
    }
    return list;
}

//  The canonical JSON text of a value (cbus_json_write's form), or -1
//  if it nests too deep.
static int
s_canonical_text (const json_t *value, cbus_buf_t *text)
{
    cbus_buf_t packed = {0};
    msgpack_packer pk;
    cbus_packer_init (&pk, &packed);
    int rc = -1;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    if (cbus_json_pack (value, &pk) == 0
    &&  msgpack_unpack_next (&unpacked, packed.data, packed.size, &offset) == MSGPACK_UNPACK_SUCCESS
    &&  cbus_json_write (text, &unpacked.data) == 0)
        rc = 0;
    msgpack_unpacked_destroy (&unpacked);
    cbus_buf_free (&packed);
    return rc;
}

//  Build, seal if asked and sign the transaction. Returns the signed
//  transaction's JSON (one line, caller frees) with its txid in txid_hex,
//  or NULL with a reason.
static char *
s_build_signed (s_args_t *args, cbus_key_t *key, char *txid_hex, char *reason)
{
    uint8_t receiver [CBUS_PUBKEY_BYTES];
    if (cbus_hex_decode (args->to, receiver, sizeof (receiver))) {
        cbus_fail (reason, "--to must be a public key: %d hex digits", 2 * CBUS_PUBKEY_BYTES);
        return NULL;
    }
    char receiver_hex [CBUS_KEY_HEX];
    cbus_hex_encode (receiver, sizeof (receiver), receiver_hex);
    char *text = NULL;
    cbus_seal_t *seal = NULL;
    cbus_tx_t *tx = NULL;
    cbus_buf_t plaintext = {0}, out = {0};
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    json_t *object = json_object ();
    json_t *data = s_data_value (args, reason);
    if (!data)
        goto cleanup;
    const char *dh_parameters = "";
    if (args->seal) {
        if (s_canonical_text (data, &plaintext)) {
            cbus_fail (reason, "data: nested deeper than %d levels", CBUS_JSON_MAX_DEPTH);
            goto cleanup;
        }
        seal = cbus_seal_new (receiver, plaintext.data, plaintext.size, reason);
        if (!seal)
            goto cleanup;
        json_decref (data);
        data = cbus_seal_data (seal);
        dh_parameters = cbus_seal_dh_parameters (seal);
    }
    json_t *users = s_users_value (args, key, reason);
    if (!users)
        goto cleanup;
    json_object_set_new (object, "users", users);
    json_object_set (object, "data", data);
    json_object_set_new (object, "dh_parameters", json_string (dh_parameters));
    json_t *server_key = s_string (args->server_key ? args->server_key: "", "--server-key", reason);
    if (!server_key)
        goto cleanup;
    json_object_set_new (object, "server_public_key", server_key);
    json_object_set_new (object, "receiver_public_key", json_string (receiver_hex));
    json_object_set_new (object, "sender_public_key", json_string (cbus_key_public_hex (key)));
    //  The wallet stamps the time itself, so that the signature covers it
    //  and the same signed JSON sent again is the same transaction.
    json_object_set_new (object, "timestamp", json_integer ((json_int_t) cbus_time_us ()));

    //  The checks a node makes, then the signature over the canonical bytes.
    tx = cbus_tx_new_from_json (object, 0, reason);
    if (!tx)
        goto cleanup;
    size_t size;
    const uint8_t *to_sign = cbus_tx_signed_bytes (tx, &size);
    uint8_t signature [CBUS_SIG_BYTES];
    cbus_key_sign (key, to_sign, size, signature);
    char signature_hex [2 * CBUS_SIG_BYTES + 1];
    cbus_hex_encode (signature, sizeof (signature), signature_hex);
    json_object_set_new (object, "signature", json_string (signature_hex));
    cbus_tx_destroy (&tx);
    tx = cbus_tx_new_from_json (object, 0, reason);
    if (!tx)
        goto cleanup;
    if (cbus_tx_verify (tx, reason))
        goto cleanup;
    //  Written from the signed bytes: the eight keys, the signature as
    //  hex, numbers in the form that reads back to the same bytes.
    const uint8_t *bytes = cbus_tx_bytes (tx, &size);
    size_t offset = 0;
    if (msgpack_unpack_next (&unpacked, (const char *) bytes, size, &offset) != MSGPACK_UNPACK_SUCCESS
    ||  cbus_json_write (&out, &unpacked.data)) {
        cbus_fail (reason, "cannot write the transaction as JSON");
        goto cleanup;
    }
    cbus_hash_hex (cbus_tx_id (tx), txid_hex);
    text = cbus_buf_detach (&out, NULL);
cleanup:
    msgpack_unpacked_destroy (&unpacked);
    cbus_buf_free (&out);
    cbus_buf_free (&plaintext);
    cbus_tx_destroy (&tx);
    cbus_seal_destroy (&seal);
    json_decref (data);
    json_decref (object);
    return text;
}

//  --------------------------------------------------------------------------
//  The commands. Each returns an exit code; a failure leaves its reason.

static int
s_key_new (s_args_t *args, char *reason)
{
    cbus_key_t *key = cbus_key_new ();
    int rc = cbus_key_save (key, args->positional, reason);
    if (rc == 0)
        printf ("%s\n", cbus_key_public_hex (key));
    cbus_key_destroy (&key);
    return rc ? S_EXIT_FAILED: 0;
}

static int
s_key_show (s_args_t *args, char *reason)
{
    cbus_key_t *key = cbus_key_load (args->positional, reason);
    if (!key)
        return S_EXIT_FAILED;
    printf ("%s\n", cbus_key_public_hex (key));
    cbus_key_destroy (&key);
    return 0;
}

static int
s_tx_sign_or_send (s_args_t *args, char *reason)
{
    char node [PATH_MAX];
    if (args->command == S_TX_SEND && s_node_url (args->node, node, reason))
        return S_EXIT_USAGE;
    cbus_key_t *key = cbus_key_load (args->key_path, reason);
    if (!key)
        return S_EXIT_FAILED;
    char txid [CBUS_HASH_HEX];
    char *text = s_build_signed (args, key, txid, reason);
    cbus_key_destroy (&key);
    if (!text)
        return S_EXIT_FAILED;
    if (args->command == S_TX_SIGN) {
        printf ("%s\n", text);
        free (text);
        return 0;
    }
    int rc = S_EXIT_FAILED;
    cbus_http_reply_t *answer = cbus_http_request (node, "/transactions/new", text, &s_limits);
    if (!cbus_http_reply_ok (answer)) {
        s_refused (answer, node, reason);
        goto cleanup;
    }
    json_t *given = json_object_get (answer->json, "txid");
    if (json_is_string (given) && !streq (json_string_value (given), txid)) {
        cbus_fail (reason, "%s took it as txid %.64s, not %s", node, json_string_value (given), txid);
        goto cleanup;
    }
    printf ("%s\n", txid);
    if (json_is_true (json_object_get (answer->json, "duplicate"))) {
        json_t *message = json_object_get (answer->json, "message");
        fprintf (stderr, "chainbus tx send: duplicate: %s\n",
                 json_is_string (message) ? json_string_value (message): "already known");
    }
    rc = 0;
cleanup:
    cbus_http_reply_destroy (&answer);
    free (text);
    return rc;
}

//  GET /transactions/<txid>; 0 with a 2xx answer in *answer_p (caller
//  destroys), or an exit code.
static int
s_tx_fetch (s_args_t *args, cbus_http_reply_t **answer_p, char *reason)
{
    char node [PATH_MAX];
    if (s_node_url (args->node, node, reason))
        return S_EXIT_USAGE;
    uint8_t id [CBUS_HASH_BYTES];
    if (cbus_hex_decode (args->positional, id, sizeof (id))) {
        cbus_fail (reason, "TXID must be %d hex digits", 2 * CBUS_HASH_BYTES);
        return S_EXIT_USAGE;
    }
    char path [32 + CBUS_HASH_HEX], txid [CBUS_HASH_HEX];
    snprintf (path, sizeof (path), "/transactions/%s", cbus_hash_hex (id, txid));
    cbus_http_reply_t *answer = *answer_p = cbus_http_request (node, path, NULL, &s_limits);
    if (!cbus_http_reply_ok (answer)) {
        s_refused (answer, node, reason);
        return S_EXIT_FAILED;
    }
    if (!json_is_object (json_object_get (answer->json, "transaction"))) {
        cbus_fail (reason, "%s sent an answer without a transaction", node);
        return S_EXIT_FAILED;
    }
    return 0;
}

static int
s_tx_get (s_args_t *args, char *reason)
{
    cbus_http_reply_t *answer = NULL;
    int rc = s_tx_fetch (args, &answer, reason);
    if (rc == 0) {
        fwrite (answer->body.data, 1, answer->body.size, stdout);
        if (answer->body.size == 0 || answer->body.data [answer->body.size - 1] != '\n')
            putchar ('\n');
    }
    cbus_http_reply_destroy (&answer);
    return rc;
}

static int
s_tx_open (s_args_t *args, char *reason)
{
    cbus_key_t *key = cbus_key_load (args->key_path, reason);
    if (!key)
        return S_EXIT_FAILED;
    cbus_http_reply_t *answer = NULL;
    cbus_seal_t *seal = NULL;
    uint8_t *plaintext = NULL;
    json_t *value = NULL;
    cbus_buf_t text = {0};
    int rc = s_tx_fetch (args, &answer, reason);
    if (rc)
        goto cleanup;
    rc = S_EXIT_FAILED;
    json_t *tx = json_object_get (answer->json, "transaction");
    const char *dh_parameters = json_string_value (json_object_get (tx, "dh_parameters"));
    if (!cbus_seal_is_sealed (dh_parameters)) {
        cbus_fail (reason, "transaction %s is not sealed (its dh_parameters is not %s:...)",
                   args->positional, CBUS_SEAL_SCHEME);
        goto cleanup;
    }
    seal = cbus_seal_new_from_json (dh_parameters, json_object_get (tx, "data"), reason);
    if (!seal)
        goto cleanup;
    size_t size;
    plaintext = cbus_seal_open (seal, cbus_key_secret (key), &size, reason);
    if (!plaintext)
        goto cleanup;
    //  What the sender sealed is theirs to choose: print it only as
    //  JSON written afresh, never raw bytes to a terminal.
    char parse_reason [CBUS_REASON_MAX];
    value = cbus_json_parse ((const char *) plaintext, size, parse_reason);
    if (!value || s_canonical_text (value, &text)) {
        cbus_fail (reason, "opened, but the sealed data is not JSON text: %s",
                   value ? "nested too deep": parse_reason);
        goto cleanup;
    }
    printf ("%s\n", text.data);
    rc = 0;
cleanup:
    cbus_buf_free (&text);
    json_decref (value);
    if (plaintext) {
        sodium_memzero (plaintext, size);
        free (plaintext);
    }
    cbus_seal_destroy (&seal);
    cbus_http_reply_destroy (&answer);
    cbus_key_destroy (&key);
    return rc;
}

int
cbus_wallet_run (int argc, char **argv)
{
    char reason [CBUS_REASON_MAX] = "";
    s_args_t args;
    memset (&args, 0, sizeof (args));
    args.users = zlist_new ();
    zlist_autofree (args.users);
    int rc;
    if (s_args_parse (&args, argc, argv, reason))
        rc = S_EXIT_USAGE;
    else
    if (sodium_init () < 0) {
        cbus_fail (reason, "cannot start libsodium");
        rc = S_EXIT_FAILED;
    }
    else {
        cbus_http_global_init ();
        switch (args.command) {
            case S_KEY_NEW:  rc = s_key_new (&args, reason); break;
            case S_KEY_SHOW: rc = s_key_show (&args, reason); break;
            case S_TX_SIGN:
            case S_TX_SEND:  rc = s_tx_sign_or_send (&args, reason); break;
            case S_TX_GET:   rc = s_tx_get (&args, reason); break;
            default:         rc = s_tx_open (&args, reason); break;
        }
        cbus_http_global_cleanup ();
    }
    if (rc)
        fprintf (stderr, "chainbus %s: %s\n", args.name, reason);
    zlist_destroy (&args.users);
    return rc;
}
