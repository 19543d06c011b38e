/*  =========================================================================
    cbus_gw_guard - deadlines and room for the gateway's HTTP connections

    Two intrusive lists: connections waiting for a head, in the order they
    began waiting (every wait has the same length, so the oldest is first
    to expire and the sweep stops at the first one still in time), and
    connections receiving a body, checked each sweep for their rate.
    =========================================================================
*/
#include "cbus_gw_guard.h"
#include <sys/socket.h>

typedef enum {
    S_WAITING,                      //  For a request head
    S_BODY,                         //  Receiving a body
    S_WORKING,                      //  Being answered
    S_CLOSING                       //  Shut down, MHD not yet told us
} s_state_t;

typedef struct {
    cbus_gw_conn_t *head;           //  Oldest
    cbus_gw_conn_t *tail;           //  Newest
} s_list_t;

struct _cbus_gw_conn_t {
    int fd;                         //  Its socket (MHD's)
    s_state_t state;                //  See above
    int64_t since;                  //  When it entered its state (ms)
    uint64_t body_seen;             //  Body bytes so far, in S_BODY
    bool answered;                  //  A request of it was answered
    cbus_gw_conn_t *prev;           //  In its list, if any
    cbus_gw_conn_t *next;
};

struct _cbus_gw_guard_t {
    cbus_gw_guard_limits_t limits;  //  As given
    s_list_t waiting;               //  S_WAITING connections
    s_list_t bodies;                //  S_BODY connections
    size_t open;                    //  Connections known
    size_t closing;                 //  ... of which shut down
    uint64_t counts [CBUS_GW_REFUSED_KINDS];    //  Since the last report
};

static const char *s_kind_names [CBUS_GW_REFUSED_KINDS] = {
    "header_late", "body_slow", "idle_closed", "capped", "bad_framing", "keepalive_ended"
};

//  --------------------------------------------------------------------------
//  Lists

static void
s_list_append (s_list_t *list, cbus_gw_conn_t *conn)
{
    conn->prev = list->tail;
    conn->next = NULL;
    if (list->tail)
        list->tail->next = conn;
    else
        list->head = conn;
    list->tail = conn;
}

static void
s_list_remove (s_list_t *list, cbus_gw_conn_t *conn)
{
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        list->head = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    else
        list->tail = conn->prev;
    conn->prev = conn->next = NULL;
}

//  Take a connection out of whatever list its state keeps it in.
static void
s_unlink (cbus_gw_guard_t *self, cbus_gw_conn_t *conn)
{
    if (conn->state == S_WAITING)
        s_list_remove (&self->waiting, conn);
    else
    if (conn->state == S_BODY)
        s_list_remove (&self->bodies, conn);
}

static void
s_enter (cbus_gw_guard_t *self, cbus_gw_conn_t *conn, s_state_t state, int64_t now)
{
    s_unlink (self, conn);
    conn->state = state;
    conn->since = now;
    conn->body_seen = 0;
    if (state == S_WAITING)
        s_list_append (&self->waiting, conn);
    else
    if (state == S_BODY)
        s_list_append (&self->bodies, conn);
}

//  Shut the connection's socket down; MHD sees the end and closes it.
static void
s_shut (cbus_gw_guard_t *self, cbus_gw_conn_t *conn, cbus_gw_refusal_t kind)
{
    s_enter (self, conn, S_CLOSING, conn->since);
    self->closing++;
    self->counts [kind]++;
    shutdown (conn->fd, SHUT_RDWR);
}

//  --------------------------------------------------------------------------

cbus_gw_guard_t *
cbus_gw_guard_new (const cbus_gw_guard_limits_t *limits)
{
    cbus_gw_guard_t *self = (cbus_gw_guard_t *) zmalloc (sizeof (cbus_gw_guard_t));
    if (self)
        self->limits = *limits;
    return self;
}

void
cbus_gw_guard_destroy (cbus_gw_guard_t **self_p)
{
    cbus_gw_guard_t *self = *self_p;
    if (self) {
        //  MHD closes every connection before we are destroyed; any left
        //  were never reported closed, and are freed from the lists.
        while (self->waiting.head)
            cbus_gw_guard_close (self, self->waiting.head);
        while (self->bodies.head)
            cbus_gw_guard_close (self, self->bodies.head);
        free (self);
        *self_p = NULL;
    }
}

cbus_gw_conn_t *
cbus_gw_guard_open (cbus_gw_guard_t *self, int fd, int64_t now)
{
    //  Near the cap: close waiting connections, oldest first.
    size_t keep = self->limits.max_connections > self->limits.room
                ? self->limits.max_connections - self->limits.room : 0;
    while (self->open - self->closing >= keep && self->waiting.head)
        s_shut (self, self->waiting.head, CBUS_GW_REFUSED_IDLE_CLOSED);
    cbus_gw_conn_t *conn = (cbus_gw_conn_t *) zmalloc (sizeof (cbus_gw_conn_t));
    if (!conn)
        return NULL;
    conn->fd = fd;
    conn->state = S_WORKING;
    s_enter (self, conn, S_WAITING, now);
    self->open++;
    return conn;
}

void
cbus_gw_guard_close (cbus_gw_guard_t *self, cbus_gw_conn_t *conn)
{
    if (!conn)
        return;
    if (conn->state == S_CLOSING)
        self->closing--;
    s_unlink (self, conn);
    self->open--;
    free (conn);
}

void
cbus_gw_guard_head (cbus_gw_guard_t *self, cbus_gw_conn_t *conn, bool has_body, int64_t now)
{
    if (conn && conn->state != S_CLOSING)
        s_enter (self, conn, has_body ? S_BODY : S_WORKING, now);
}

void
cbus_gw_guard_body (cbus_gw_guard_t *self, cbus_gw_conn_t *conn, size_t size)
{
    (void) self;
    if (conn && conn->state == S_BODY)
        conn->body_seen += size;
}

void
cbus_gw_guard_working (cbus_gw_guard_t *self, cbus_gw_conn_t *conn)
{
    if (conn && conn->state == S_BODY)
        s_enter (self, conn, S_WORKING, conn->since);
}

void
cbus_gw_guard_done (cbus_gw_guard_t *self, cbus_gw_conn_t *conn, int64_t now)
{
    if (conn && conn->state != S_CLOSING) {
        s_enter (self, conn, S_WAITING, now);
        conn->answered = true;
    }
}

size_t
cbus_gw_guard_sweep (cbus_gw_guard_t *self, int64_t now)
{
    size_t closed = 0;
    int64_t grace = self->limits.header_timeout_ms;
    while (self->waiting.head && self->waiting.head->since + grace <= now) {
        s_shut (self, self->waiting.head, self->waiting.head->answered
                                          ? CBUS_GW_KEEPALIVE_ENDED
                                          : CBUS_GW_REFUSED_HEADER_LATE);
        closed++;
    }
    //  A body is on time while it has at least rate * (elapsed - grace).
    cbus_gw_conn_t *conn = self->bodies.head;
    while (conn) {
        cbus_gw_conn_t *next = conn->next;
        int64_t late_ms = now - conn->since - grace;
        if (late_ms > 0
        &&  conn->body_seen < (uint64_t) late_ms * self->limits.body_min_rate / 1000) {
            s_shut (self, conn, CBUS_GW_REFUSED_BODY_SLOW);
            closed++;
        }
        conn = next;
    }
    return closed;
}

void
cbus_gw_guard_count (cbus_gw_guard_t *self, cbus_gw_refusal_t kind)
{
    assert (kind < CBUS_GW_REFUSED_KINDS);
    self->counts [kind]++;
}

size_t
cbus_gw_guard_size (cbus_gw_guard_t *self)
{
    return self->open;
}

int
cbus_gw_guard_report (cbus_gw_guard_t *self, char *line, size_t size)
{
    uint64_t total = 0;
    for (int kind = 0; kind < CBUS_GW_KEEPALIVE_ENDED; kind++)
        total += self->counts [kind];
    if (total == 0)
        return -1;
    size_t used = 0;
    for (int kind = 0; kind < CBUS_GW_REFUSED_KINDS; kind++) {
        int rc = snprintf (line + used, size - used, "%s%s=%" PRIu64, used ? " " : "",
                           s_kind_names [kind], self->counts [kind]);
        if (rc < 0 || (size_t) rc >= size - used)
            break;
        used += (size_t) rc;
        self->counts [kind] = 0;
    }
    snprintf (line + used, size - used, " open=%zu", self->open);
    memset (self->counts, 0, sizeof (self->counts));
    return 0;
}

//  --------------------------------------------------------------------------
//  Self-test

//  True when the far end of a socket pair sees the near end shut down.
static bool
s_shut_seen (int fd)
{
    char byte;
    return recv (fd, &byte, 1, MSG_DONTWAIT) == 0;
}

void
cbus_gw_guard_test (bool verbose)
{
    printf (" * cbus_gw_guard: ");
    cbus_gw_guard_limits_t limits = { .header_timeout_ms = 1000, .body_min_rate = 100,
                                      .max_connections = 6, .room = 2 };
    cbus_gw_guard_t *guard = cbus_gw_guard_new (&limits);
    assert (guard);
    int pairs [6][2];
    cbus_gw_conn_t *conns [6];
    for (int index = 0; index < 6; index++)
        assert (socketpair (AF_UNIX, SOCK_STREAM, 0, pairs [index]) == 0);

    //  A head late: closed at its deadline, not before; bytes do not matter.
    conns [0] = cbus_gw_guard_open (guard, pairs [0][0], 0);
    conns [1] = cbus_gw_guard_open (guard, pairs [1][0], 500);
    assert (cbus_gw_guard_sweep (guard, 999) == 0);
    assert (cbus_gw_guard_sweep (guard, 1000) == 1);
    assert (s_shut_seen (pairs [0][1]));
    assert (!s_shut_seen (pairs [1][1]));
    //  A request being answered is never closed; after its answer the
    //  wait starts again.
    cbus_gw_guard_head (guard, conns [1], false, 800);
    assert (cbus_gw_guard_sweep (guard, 100000) == 0);
    cbus_gw_guard_done (guard, conns [1], 100000);
    assert (cbus_gw_guard_sweep (guard, 100999) == 0);

    //  A body: 1 s of grace, then 100 bytes a second.
    cbus_gw_guard_head (guard, conns [1], true, 100000);
    cbus_gw_guard_body (guard, conns [1], 100);
    assert (cbus_gw_guard_sweep (guard, 101900) == 0);      //  100 >= 90
    assert (cbus_gw_guard_sweep (guard, 102000) == 0);      //  100 >= 100
    assert (cbus_gw_guard_sweep (guard, 102100) == 1);      //  100 < 110
    assert (s_shut_seen (pairs [1][1]));
    //  Closed ones stay counted until MHD says they are gone.
    assert (cbus_gw_guard_size (guard) == 2);
    cbus_gw_guard_close (guard, conns [0]);
    cbus_gw_guard_close (guard, conns [1]);
    assert (cbus_gw_guard_size (guard) == 0);

    //  Room: at 4 of 6 open, a newcomer closes the oldest waiting one.
    conns [2] = cbus_gw_guard_open (guard, pairs [2][0], 200000);
    conns [3] = cbus_gw_guard_open (guard, pairs [3][0], 200001);
    cbus_gw_guard_head (guard, conns [2], false, 200002);   //  Busy: kept
    conns [4] = cbus_gw_guard_open (guard, pairs [4][0], 200003);
    conns [5] = cbus_gw_guard_open (guard, pairs [5][0], 200004);
    assert (!s_shut_seen (pairs [3][1]));
    cbus_gw_conn_t *extra = cbus_gw_guard_open (guard, pairs [0][0], 200005);
    assert (s_shut_seen (pairs [3][1]));
    assert (!s_shut_seen (pairs [2][1]) && !s_shut_seen (pairs [4][1]));
    cbus_gw_guard_count (guard, CBUS_GW_REFUSED_CAPPED);

    char line [256];
    assert (cbus_gw_guard_report (guard, line, sizeof (line)) == 0);
    if (verbose)
        printf ("(%s) ", line);
    assert (streq (line, "header_late=1 body_slow=1 idle_closed=1 capped=1 bad_framing=0 "
                         "keepalive_ended=0 open=5"));
    assert (cbus_gw_guard_report (guard, line, sizeof (line)) == -1);
    //  A kept-alive connection that sends nothing more ends, uncounted
    //  as a refusal.
    cbus_gw_guard_done (guard, conns [2], 300000);
    assert (cbus_gw_guard_sweep (guard, 301000) == 4);      //  4, 5 and extra too
    assert (s_shut_seen (pairs [2][1]));
    assert (cbus_gw_guard_report (guard, line, sizeof (line)) == 0);
    assert (strstr (line, "header_late=3 ") && strstr (line, "keepalive_ended=1 "));
    cbus_gw_guard_close (guard, extra);
    cbus_gw_guard_close (guard, conns [2]);
    cbus_gw_guard_close (guard, conns [3]);
    cbus_gw_guard_close (guard, conns [4]);
    cbus_gw_guard_close (guard, conns [5]);
    assert (cbus_gw_guard_size (guard) == 0);
    cbus_gw_guard_destroy (&guard);
    cbus_gw_guard_destroy (&guard);
    for (int index = 0; index < 6; index++) {
        close (pairs [index][0]);
        close (pairs [index][1]);
    }
    printf ("OK\n");
}
