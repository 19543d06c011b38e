/*  =========================================================================
    cbus_gw_drain - the bytes of a streamed answer, handed to MHD as it pulls

    See the header. This is the copy loop that GET /chain's and GET
    /events' content readers shared, written once.
    =========================================================================
*/
#include "cbus_gw_drain.h"

size_t
cbus_gw_drain_queued (const cbus_gw_drain_t *self)
{
    return self->text.size - self->offset;
}

size_t
cbus_gw_drain_take (cbus_gw_drain_t *self, char *buf, size_t max, size_t keep)
{
    size_t size = self->text.size - self->offset;
    if (size == 0) {
        if (self->text.alloc > keep)
            cbus_buf_free (&self->text);
        cbus_buf_reset (&self->text);
        self->offset = 0;
        return 0;
    }
    if (size > max)
        size = max;
    memcpy (buf, self->text.data + self->offset, size);
    self->offset += size;
    return size;
}

void
cbus_gw_drain_append (cbus_gw_drain_t *self, const void *data, size_t size, size_t keep)
{
    size_t queued = self->text.size - self->offset;
    if (self->offset > 0 && (self->offset >= keep || 2 * self->offset >= self->text.size)) {
        memmove (self->text.data, self->text.data + self->offset, queued);
        self->text.size = queued;
        self->text.data [queued] = 0;
        self->offset = 0;
    }
    cbus_buf_append (&self->text, data, size);
}

void
cbus_gw_drain_free (cbus_gw_drain_t *self)
{
    cbus_buf_free (&self->text);
    self->offset = 0;
}

//  --------------------------------------------------------------------------
//  Self test

void
cbus_gw_drain_test (bool verbose)
{
    (void) verbose;
    printf (" * cbus_gw_drain: ");
    cbus_gw_drain_t drain = {0};
    char buf [16];
    //  Empty: nothing to take, and nothing allocated for it.
    assert (cbus_gw_drain_take (&drain, buf, sizeof (buf), 4096) == 0);
    assert (cbus_gw_drain_queued (&drain) == 0);

    //  Taken in pieces of at most max, in order, then 0.
    cbus_buf_puts (&drain.text, "hello, ");
    cbus_gw_drain_append (&drain, "world", 5, 4096);
    assert (cbus_gw_drain_queued (&drain) == 12);
    assert (cbus_gw_drain_take (&drain, buf, 5, 4096) == 5 && memcmp (buf, "hello", 5) == 0);
    assert (cbus_gw_drain_take (&drain, buf, sizeof (buf), 4096) == 7);
    assert (memcmp (buf, ", world", 7) == 0);
    assert (cbus_gw_drain_take (&drain, buf, sizeof (buf), 4096) == 0);
    //  Drained: it starts again at its front, memory kept (under keep).
    assert (drain.offset == 0 && drain.text.size == 0 && drain.text.alloc > 0);

    //  An append after half was taken moves the rest to the front.
    cbus_gw_drain_append (&drain, "abcdefgh", 8, 4096);
    assert (cbus_gw_drain_take (&drain, buf, 4, 4096) == 4);
    cbus_gw_drain_append (&drain, "ij", 2, 4096);
    assert (drain.offset == 0 && drain.text.size == 6);
    assert (streq (drain.text.data, "efghij"));
    //  Less than half taken, under keep: appended in place.
    assert (cbus_gw_drain_take (&drain, buf, 1, 4096) == 1);
    cbus_gw_drain_append (&drain, "k", 1, 4096);
    assert (drain.offset == 1 && cbus_gw_drain_queued (&drain) == 6);
    //  keep bytes taken: moved, however long the rest (not yet: 1 < 2).
    cbus_gw_drain_append (&drain, "lmnopqrstuvwxyz", 15, 2);
    assert (drain.offset == 1 && drain.text.size == 22);
    assert (cbus_gw_drain_take (&drain, buf, 2, 2) == 2 && memcmp (buf, "fg", 2) == 0);
    cbus_gw_drain_append (&drain, "!", 1, 2);
    assert (drain.offset == 0 && streq (drain.text.data, "hijklmnopqrstuvwxyz!"));

    //  A buffer grown past keep is freed once drained.
    while (cbus_gw_drain_take (&drain, buf, sizeof (buf), 2) > 0)
        ;
    assert (drain.text.alloc == 0 && drain.text.data == NULL && drain.offset == 0);
    cbus_gw_drain_append (&drain, "again", 5, 2);
    assert (cbus_gw_drain_take (&drain, buf, sizeof (buf), 2) == 5);
    cbus_gw_drain_free (&drain);
    cbus_gw_drain_free (&drain);        //  Twice is safe
    assert (cbus_gw_drain_queued (&drain) == 0);
    printf ("OK\n");
}
