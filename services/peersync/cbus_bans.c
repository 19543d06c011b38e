/*  =========================================================================
    cbus_bans - the peers this node ignores for a while, by key
    =========================================================================
*/
#include "cbus_bans.h"

struct _cbus_bans_t {
    zhashx_t *bans;             //  Key -> cbus_ban_t, owned
    size_t max;                 //  Most bans kept
};

static void
s_free_ban (void **item)
{
    free (*item);
    *item = NULL;
}

cbus_bans_t *
cbus_bans_new (size_t max)
{
    cbus_bans_t *self = (cbus_bans_t *) zmalloc (sizeof (cbus_bans_t));
    if (!self)
        return NULL;
    self->bans = zhashx_new ();
    if (!self->bans) {
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->bans, s_free_ban);
    self->max = max ? max : 1;
    return self;
}

void
cbus_bans_destroy (cbus_bans_t **self_p)
{
    cbus_bans_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->bans);
    free (self);
    *self_p = NULL;
}

//  Room for one more: the ban ending soonest goes. O(n), only when full.
static void
s_make_room (cbus_bans_t *self)
{
    const char *soonest = NULL;
    int64_t until = INT64_MAX;
    for (cbus_ban_t *ban = (cbus_ban_t *) zhashx_first (self->bans); ban;
         ban = (cbus_ban_t *) zhashx_next (self->bans))
        if (ban->until < until) {
            until = ban->until;
            soonest = (const char *) zhashx_cursor (self->bans);
        }
    if (soonest) {
        char key [41];
        snprintf (key, sizeof (key), "%s", soonest);
        zhashx_delete (self->bans, key);
    }
}

int
cbus_bans_add (cbus_bans_t *self, const cbus_ban_t *ban)
{
    cbus_ban_t *copy = (cbus_ban_t *) malloc (sizeof (cbus_ban_t));
    if (!copy)
        return -1;
    *copy = *ban;
    copy->key [sizeof (copy->key) - 1] = 0;
    zhashx_delete (self->bans, copy->key);
    if (zhashx_size (self->bans) >= self->max)
        s_make_room (self);
    if (zhashx_insert (self->bans, copy->key, copy)) {
        free (copy);
        return -1;
    }
    return 0;
}

const cbus_ban_t *
cbus_bans_find (cbus_bans_t *self, const char *key, int64_t now)
{
    cbus_ban_t *ban = (cbus_ban_t *) zhashx_lookup (self->bans, key);
    if (ban && ban->until <= now) {
        zhashx_delete (self->bans, key);
        ban = NULL;
    }
    return ban;
}

void
cbus_bans_purge (cbus_bans_t *self, int64_t now)
{
    zlistx_t *ended = zlistx_new ();
    if (!ended)
        return;
    for (cbus_ban_t *ban = (cbus_ban_t *) zhashx_first (self->bans); ban;
         ban = (cbus_ban_t *) zhashx_next (self->bans))
        if (ban->until <= now)
            zlistx_add_end (ended, ban->key);
    //  Keys are the bans' own: delete after the walk, by a copy.
    for (const char *key = (const char *) zlistx_first (ended); key;
         key = (const char *) zlistx_next (ended)) {
        char copy [41];
        snprintf (copy, sizeof (copy), "%s", key);
        zhashx_delete (self->bans, copy);
    }
    zlistx_destroy (&ended);
}

size_t
cbus_bans_size (cbus_bans_t *self)
{
    return zhashx_size (self->bans);
}

const cbus_ban_t *
cbus_bans_first (cbus_bans_t *self)
{
    return (const cbus_ban_t *) zhashx_first (self->bans);
}

const cbus_ban_t *
cbus_bans_next (cbus_bans_t *self)
{
    return (const cbus_ban_t *) zhashx_next (self->bans);
}

//  --------------------------------------------------------------------------
//  Self test

void
cbus_bans_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_bans: ");
    cbus_bans_t *bans = cbus_bans_new (3);
    assert (bans);
    cbus_ban_t ban = { .score = -100 };
    for (int index = 0; index < 5; index++) {
        snprintf (ban.key, sizeof (ban.key), "key%d", index);
        ban.until = 1000 + index * 100;
        assert (cbus_bans_add (bans, &ban) == 0);
        assert (cbus_bans_size (bans) <= 3);
    }
    //  Full: those that would end soonest made room.
    assert (cbus_bans_size (bans) == 3);
    assert (!cbus_bans_find (bans, "key0", 0) && !cbus_bans_find (bans, "key1", 0));
    assert (cbus_bans_find (bans, "key4", 0)->until == 1400);
    //  The same key again replaces its ban.
    ban.until = 5000;
    assert (cbus_bans_add (bans, &ban) == 0 && cbus_bans_size (bans) == 3);
    assert (cbus_bans_find (bans, "key4", 1500)->until == 5000);
    //  Ended bans are forgotten, looked up or purged.
    assert (!cbus_bans_find (bans, "key2", 1200) && cbus_bans_size (bans) == 2);
    cbus_bans_purge (bans, 2000);
    assert (cbus_bans_size (bans) == 1);
    size_t walked = 0;
    for (const cbus_ban_t *each = cbus_bans_first (bans); each; each = cbus_bans_next (bans))
        walked++;
    assert (walked == 1);
    cbus_bans_destroy (&bans);
    cbus_bans_destroy (&bans);
    if (verbose)
        printf ("OK\n");
}
