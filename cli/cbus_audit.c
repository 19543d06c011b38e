/*  =========================================================================
    cbus_audit - the state and the reports of one `chainbus verify`
    =========================================================================
*/
#include "cbus_audit.h"
#include <stdarg.h>

static void
s_free_item (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

cbus_audit_t *
cbus_audit_new (cbus_store_t *store, const char *network, const cbus_pow_rule_t *rule,
                uint64_t max_future_ms)
{
    cbus_audit_t *self = (cbus_audit_t *) zmalloc (sizeof (cbus_audit_t));
    self->store = store;
    self->network = network;
    self->rule = *rule;
    self->max_future_ms = max_future_ms;
    self->txs = cbus_hash_table_new ();
    zhashx_set_destructor (self->txs, s_free_item);
    self->damage = zlistx_new ();
    zlistx_set_destructor (self->damage, s_free_item);
    return self;
}

void
cbus_audit_destroy (cbus_audit_t **self_p)
{
    assert (self_p);
    cbus_audit_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->txs);
        zlistx_destroy (&self->damage);
        free (self);
        *self_p = NULL;
    }
}

int
cbus_audit_get (cbus_audit_t *self, cbus_layout_key_t key, char **value_p, size_t *size_p)
{
    if (cbus_store_get (self->store, key.bytes, key.size, value_p, size_p))
        return -1;
    return *value_p? 1: 0;
}

//  --------------------------------------------------------------------------
//  Reports: one line per problem on stdout, the first CBUS_AUDIT_SHOW_MAX
//  shown

void
cbus_audit_say (cbus_audit_t *self, const char *format, ...)
{
    if (++self->problems > CBUS_AUDIT_SHOW_MAX)
        return;
    va_list args;
    va_start (args, format);
    vprintf (format, args);
    va_end (args);
    putchar ('\n');
}

void
cbus_audit_report (cbus_audit_t *self, uint64_t height, const uint8_t *hash, int64_t position,
                   const uint8_t *txid, const char *format, ...)
{
    if (++self->problems > CBUS_AUDIT_SHOW_MAX)
        return;
    char hex [CBUS_HASH_HEX];
    printf ("block %" PRIu64, height);
    if (hash)
        printf (" (%s)", cbus_hash_hex (hash, hex));
    if (position >= 0) {
        printf (": transaction %" PRId64, position);
        if (txid)
            printf (" (txid %s)", cbus_hash_hex (txid, hex));
    }
    printf (": ");
    va_list args;
    va_start (args, format);
    vprintf (format, args);
    va_end (args);
    putchar ('\n');
}

//  --------------------------------------------------------------------------
//  Damage: what was reported, to explain the index entries that name it

//  A new damage record at the end of the list, or NULL when the list is
//  full.
static cbus_audit_damage_t *
s_damage_new (cbus_audit_t *self, uint64_t height, uint64_t last, uint32_t position)
{
    if (zlistx_size (self->damage) >= CBUS_AUDIT_DAMAGE_MAX)
        return NULL;
    cbus_audit_damage_t *damage = (cbus_audit_damage_t *) zmalloc (sizeof (cbus_audit_damage_t));
    damage->height = height;
    damage->last = last;
    damage->position = position;
    zlistx_add_end (self->damage, damage);
    return damage;
}

void
cbus_audit_damage (cbus_audit_t *self, uint64_t height, const uint8_t hash [CBUS_HASH_BYTES],
                   uint32_t position)
{
    cbus_audit_damage_t *damage = s_damage_new (self, height, height, position);
    if (damage) {
        damage->hashed = true;
        memcpy (damage->block, hash, CBUS_HASH_BYTES);
    }
}

void
cbus_audit_damage_heights (cbus_audit_t *self, uint64_t height, uint64_t last)
{
    s_damage_new (self, height, last, CBUS_AUDIT_WHOLE_BLOCK);
}

cbus_audit_damage_t *
cbus_audit_damage_at (cbus_audit_t *self, const uint64_t *height, const uint8_t *hash,
                      uint32_t position)
{
    for (cbus_audit_damage_t *damage = (cbus_audit_damage_t *) zlistx_first (self->damage);
         damage; damage = (cbus_audit_damage_t *) zlistx_next (self->damage)) {
        bool place = height? damage->height <= *height && *height <= damage->last
                           : damage->hashed && memcmp (damage->block, hash, CBUS_HASH_BYTES) == 0;
        if (place && (damage->position == position || damage->position == CBUS_AUDIT_WHOLE_BLOCK))
            return damage;
    }
    return NULL;
}

void
cbus_audit_damage_name (cbus_audit_damage_t *damage, const uint8_t txid [CBUS_HASH_BYTES])
{
    if (!damage->named && damage->position != CBUS_AUDIT_WHOLE_BLOCK) {
        memcpy (damage->original, txid, CBUS_HASH_BYTES);
        damage->named = true;
    }
}

//  --------------------------------------------------------------------------
//  Text

uint64_t
cbus_audit_fingerprint (const char *name, size_t size)
{
    uint8_t hash [CBUS_HASH_BYTES];
    cbus_hash_sha256 (name, size, hash);
    uint64_t value;
    memcpy (&value, hash, sizeof (value));
    return value;
}

char *
cbus_audit_shown (const char *data, size_t size, char out [CBUS_AUDIT_SHOWN_BYTES])
{
    bool utf8 = cbus_utf8_valid (data, size);
    size_t shown = size;
    if (shown > CBUS_AUDIT_NAME_SHOWN) {
        shown = CBUS_AUDIT_NAME_SHOWN;
        //  Not inside a UTF-8 sequence.
        while (utf8 && shown > 0 && ((uint8_t) data [shown] & 0xc0) == 0x80)
            shown--;
    }
    char *cursor = out;
    *cursor++ = '\'';
    for (size_t index = 0; index < shown; index++) {
        uint8_t byte = (uint8_t) data [index];
        if (byte < 0x20 || byte == 0x7f || byte == '\'' || byte == '\\' || (byte > 0x7f && !utf8))
            cursor += sprintf (cursor, "\\x%02x", byte);
        else
            *cursor++ = (char) byte;
    }
    *cursor++ = '\'';
    if (shown < size)
        cursor += sprintf (cursor, "...");
    *cursor = 0;
    return out;
}

char *
cbus_audit_tidy (const char *reason, char out [CBUS_REASON_MAX])
{
    if (strncmp (reason, "Block ", 6) == 0)
        reason += 6;
    snprintf (out, CBUS_REASON_MAX, "%s", reason);
    if (out [0] >= 'A' && out [0] <= 'Z' && !(out [1] >= 'A' && out [1] <= 'Z'))
        out [0] = (char) (out [0] - 'A' + 'a');
    return out;
}
