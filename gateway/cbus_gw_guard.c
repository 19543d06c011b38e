/*  =========================================================================
    cbus_gw_guard - deadlines and room for the gateway's HTTP connections

    Four intrusive lists: connections waiting for a head, in the order
    they began waiting (every wait has the same length, so the oldest is
    first to expire and the sweep stops at the first one still in time),
    connections receiving a body, and connections sending an answer, in
    the order their answers were queued (these two are checked each sweep
    for their deadline or rate), and connections being answered. Each connection also counts in a table of
    client addresses, so that the address holding most connections can
    be found when there is no room.
    =========================================================================
*/
#include "cbus_gw_guard.h"
#include <sys/socket.h>

typedef enum {
    S_WAITING,                      //  For a request head
    S_BODY,                         //  Receiving a body
    S_WORKING,                      //  Being answered (no answer queued yet)
    S_SENDING,                      //  Its answer queued, being sent
    S_CLOSING,                      //  Shut down, MHD not yet told us
    S_NEW                           //  Not yet in a list (being opened)
} s_state_t;

//  A client address and how many connections it has open.
typedef struct {
    char *key;                      //  As given to cbus_gw_guard_open
    size_t count;                   //  Connections open from it
} s_address_t;

typedef struct {
    cbus_gw_conn_t *head;           //  Oldest
    cbus_gw_conn_t *tail;           //  Newest
} s_list_t;

struct _cbus_gw_conn_t {
    int fd;                         //  Its socket (MHD's)
    s_state_t state;                //  See above
    int64_t since;                  //  When it entered its state (ms)
    uint64_t body_seen;             //  Body bytes so far, in S_BODY;
                                    //  answer bytes produced, in S_SENDING
    uint64_t answer_size;           //  In S_SENDING: size, or CBUS_GW_STREAMED
    int64_t paused;                 //  In S_SENDING: when a stream's wait
                                    //  for a service began, or -1
    bool answered;                  //  A request of it was answered
    s_address_t *address;           //  Its client address's entry
    cbus_gw_conn_t *prev;           //  In its list, if any
    cbus_gw_conn_t *next;
};

struct _cbus_gw_guard_t {
    cbus_gw_guard_limits_t limits;  //  As given
    s_list_t waiting;               //  S_WAITING connections
    s_list_t bodies;                //  S_BODY connections
    s_list_t sending;               //  S_SENDING connections
    s_list_t working;               //  S_WORKING connections
    size_t open;                    //  Connections known
    size_t closing;                 //  ... of which shut down
    zhashx_t *addresses;            //  Key -> s_address_t, one per address open
    uint64_t counts [CBUS_GW_REFUSED_KINDS];    //  Since the last report
};

static const char *s_kind_names [CBUS_GW_REFUSED_KINDS] = {
    "header_late", "body_slow", "answer_slow", "idle_closed", "capped", "crowded",
    "bad_framing", "keepalive_ended"
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
    else
    if (conn->state == S_SENDING)
        s_list_remove (&self->sending, conn);
    else
    if (conn->state == S_WORKING)
        s_list_remove (&self->working, conn);
}

static void
s_enter (cbus_gw_guard_t *self, cbus_gw_conn_t *conn, s_state_t state, int64_t now)
{
    s_unlink (self, conn);
    conn->state = state;
    conn->since = now;
    conn->body_seen = 0;
    conn->paused = -1;
    if (state == S_WAITING)
        s_list_append (&self->waiting, conn);
    else
    if (state == S_BODY)
        s_list_append (&self->bodies, conn);
    else
    if (state == S_SENDING)
        s_list_append (&self->sending, conn);
    else
    if (state == S_WORKING)
        s_list_append (&self->working, conn);
}

//  Whether a sending connection is past its deadline at now.
static bool
s_answer_late (cbus_gw_guard_t *self, cbus_gw_conn_t *conn, int64_t now)
{
    if (conn->paused >= 0)
        return false;               //  Waiting for a service, not the client
    int64_t grace = self->limits.header_timeout_ms;
    uint64_t rate = self->limits.body_min_rate;
    if (conn->answer_size != CBUS_GW_STREAMED) {
        //  Known size: all of it within grace plus its time at the rate.
        int64_t allowed = grace;
        if (rate)
            allowed += (int64_t) (conn->answer_size / rate * 1000
                                + conn->answer_size % rate * 1000 / rate);
        return conn->since + allowed <= now;
    }
    int64_t late_ms = now - conn->since - grace;
    return rate && late_ms > 0 && conn->body_seen < (uint64_t) late_ms * rate / 1000;
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

//  The first sending connection that may be closed to make room (a
//  stream waiting for a service is kept: that wait is ours), or NULL.
static cbus_gw_conn_t *
s_sender_first (cbus_gw_guard_t *self)
{
    cbus_gw_conn_t *conn = self->sending.head;
    while (conn && conn->paused >= 0)
        conn = conn->next;
    return conn;
}

//  Near the cap, close connections until `room` slots are free: first
//  those waiting for a head, oldest first (idle or trickling), except a
//  kept-alive one waiting for less than header_timeout_ms / 5 (a client
//  between two requests of its own); then those sending one answer for
//  more than that (not reading it), longest first. Each list is in the
//  order its connections entered their state. Returns false when there
//  is no room even so: a connection whose request is being answered, or
//  whose answer has just been queued, is never closed for a newcomer.
static bool
s_make_room (cbus_gw_guard_t *self, int64_t now)
{
    size_t keep = self->limits.max_connections > self->limits.room
                ? self->limits.max_connections - self->limits.room : 0;
    int64_t stale = now - self->limits.header_timeout_ms / 5;
    cbus_gw_conn_t *conn = self->waiting.head;
    while (self->open - self->closing >= keep && conn) {
        cbus_gw_conn_t *next = conn->next;
        if (!conn->answered || conn->since <= stale)
            s_shut (self, conn, CBUS_GW_REFUSED_IDLE_CLOSED);
        conn = next;
    }
    cbus_gw_conn_t *sender;
    while (self->open - self->closing >= keep
       &&  (sender = s_sender_first (self)) && sender->since <= stale)
        s_shut (self, sender, CBUS_GW_REFUSED_ANSWER_SLOW);
    return self->open - self->closing < keep;
}

//  The oldest connection of this address in the list that may be closed
//  for a newcomer (not a stream waiting for a service), or NULL.
static cbus_gw_conn_t *
s_first_of (s_list_t *list, s_address_t *address)
{
    for (cbus_gw_conn_t *conn = list->head; conn; conn = conn->next)
        if (conn->address == address && conn->paused < 0)
            return conn;
    return NULL;
}

//  No room even so: the newcomer's address gets its fair share. When some
//  address holds more connections than the newcomer's (counting the
//  newcomer), one of its connections is closed for the newcomer, however
//  young: the oldest waiting for a head, else the oldest sending an
//  answer, else the oldest being answered. Returns whether one was. A few
//  addresses that keep the node full (a slow-read attack that reopens
//  what is closed, its pipelined requests always being answered) then
//  cannot crowd out a client elsewhere. O(addresses + connections); runs
//  only when there was no room.
static bool
s_make_fair_room (cbus_gw_guard_t *self, s_address_t *newcomer)
{
    size_t have = newcomer ? newcomer->count : 0;
    s_address_t *heaviest = NULL;
    for (s_address_t *address = (s_address_t *) zhashx_first (self->addresses);
         address; address = (s_address_t *) zhashx_next (self->addresses))
        if (address != newcomer && (!heaviest || address->count > heaviest->count))
            heaviest = address;
    if (!heaviest || heaviest->count <= have)
        return false;
    cbus_gw_conn_t *conn = s_first_of (&self->waiting, heaviest);
    if (!conn)
        conn = s_first_of (&self->sending, heaviest);
    if (!conn)
        conn = s_first_of (&self->working, heaviest);
    if (!conn)
        return false;
    s_shut (self, conn, CBUS_GW_REFUSED_CROWDED);
    return true;
}

static void
s_address_free (void **item_p)
{
    s_address_t *address = (s_address_t *) *item_p;
    if (address) {
        free (address->key);
        free (address);
        *item_p = NULL;
    }
}

//  The address's entry, counted once more; NULL when out of memory.
static s_address_t *
s_address_take (cbus_gw_guard_t *self, const char *key)
{
    s_address_t *address = (s_address_t *) zhashx_lookup (self->addresses, key);
    if (!address) {
        address = (s_address_t *) zmalloc (sizeof (s_address_t));
        if (!address)
            return NULL;
        address->key = strdup (key);
        if (!address->key || zhashx_insert (self->addresses, address->key, address)) {
            free (address->key);
            free (address);
            return NULL;
        }
    }
    address->count++;
    return address;
}

static void
s_address_drop (cbus_gw_guard_t *self, s_address_t *address)
{
    if (address && --address->count == 0)
        zhashx_delete (self->addresses, address->key);
}

//  --------------------------------------------------------------------------

cbus_gw_guard_t *
cbus_gw_guard_new (const cbus_gw_guard_limits_t *limits)
{
    cbus_gw_guard_t *self = (cbus_gw_guard_t *) zmalloc (sizeof (cbus_gw_guard_t));
    if (!self)
        return NULL;
    self->limits = *limits;
    self->addresses = zhashx_new ();
    if (!self->addresses) {
        free (self);
        return NULL;
    }
    //  Keys are owned by the entries.
    zhashx_set_key_duplicator (self->addresses, NULL);
    zhashx_set_key_destructor (self->addresses, NULL);
    zhashx_set_destructor (self->addresses, s_address_free);
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
        while (self->sending.head)
            cbus_gw_guard_close (self, self->sending.head);
        while (self->working.head)
            cbus_gw_guard_close (self, self->working.head);
        zhashx_destroy (&self->addresses);
        free (self);
        *self_p = NULL;
    }
}

cbus_gw_conn_t *
cbus_gw_guard_open (cbus_gw_guard_t *self, int fd, const char *address, int64_t now)
{
    cbus_gw_conn_t *conn = (cbus_gw_conn_t *) zmalloc (sizeof (cbus_gw_conn_t));
    if (!conn)
        return NULL;
    conn->address = s_address_take (self, address ? address : "");
    if (!conn->address) {
        free (conn);
        return NULL;
    }
    bool room = s_make_room (self, now);
    if (!room)
        room = s_make_fair_room (self, conn->address);
    conn->fd = fd;
    conn->state = S_NEW;
    s_enter (self, conn, S_WAITING, now);
    self->open++;
    if (!room)
        s_shut (self, conn, CBUS_GW_REFUSED_CAPPED);     //  Full of fresh ones
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
    s_address_drop (self, conn->address);
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
cbus_gw_guard_answer (cbus_gw_guard_t *self, cbus_gw_conn_t *conn, uint64_t size, int64_t now)
{
    if (conn && conn->state != S_CLOSING) {
        s_enter (self, conn, S_SENDING, now);
        conn->answer_size = size;
    }
}

void
cbus_gw_guard_sent (cbus_gw_guard_t *self, cbus_gw_conn_t *conn, uint64_t pos, int64_t now)
{
    (void) self;
    if (conn && conn->state == S_SENDING) {
        if (conn->paused >= 0 && now > conn->paused)
            conn->since += now - conn->paused;
        conn->paused = -1;
        conn->body_seen = pos;
    }
}

void
cbus_gw_guard_pause (cbus_gw_guard_t *self, cbus_gw_conn_t *conn, int64_t now)
{
    (void) self;
    if (conn && conn->state == S_SENDING && conn->paused < 0)
        conn->paused = now;
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
    conn = self->sending.head;
    while (conn) {
        cbus_gw_conn_t *next = conn->next;
        if (s_answer_late (self, conn, now)) {
            s_shut (self, conn, CBUS_GW_REFUSED_ANSWER_SLOW);
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
    for (int kind = 0; kind < CBUS_GW_REFUSED_KINDS; kind++)
        if (kind != CBUS_GW_KEEPALIVE_ENDED)
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
    conns [0] = cbus_gw_guard_open (guard, pairs [0][0], "a", 0);
    conns [1] = cbus_gw_guard_open (guard, pairs [1][0], "a", 500);
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

    //  Room: at 4 of 6 open, a newcomer closes the oldest waiting one
    //  (waiting for over 200 ms: header_timeout_ms / 5).
    conns [2] = cbus_gw_guard_open (guard, pairs [2][0], "a", 200000);
    conns [3] = cbus_gw_guard_open (guard, pairs [3][0], "a", 200001);
    cbus_gw_guard_head (guard, conns [2], false, 200002);   //  Busy: kept
    conns [4] = cbus_gw_guard_open (guard, pairs [4][0], "a", 200003);
    conns [5] = cbus_gw_guard_open (guard, pairs [5][0], "a", 200004);
    assert (!s_shut_seen (pairs [3][1]));
    cbus_gw_conn_t *extra = cbus_gw_guard_open (guard, pairs [0][0], "a", 200300);
    assert (s_shut_seen (pairs [3][1]));
    assert (!s_shut_seen (pairs [2][1]) && !s_shut_seen (pairs [4][1]));
    cbus_gw_guard_count (guard, CBUS_GW_REFUSED_CAPPED);

    char line [256];
    assert (cbus_gw_guard_report (guard, line, sizeof (line)) == 0);
    if (verbose)
        printf ("(%s) ", line);
    assert (streq (line, "header_late=1 body_slow=1 answer_slow=0 idle_closed=1 capped=1 "
                         "crowded=0 bad_framing=0 keepalive_ended=0 open=5"));
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

    //  Answers: one of 200 bytes has 1 s of grace plus 2 s at 100 bytes
    //  a second; a stream 100 bytes a second after 1 s, its waits for a
    //  service not counted. A request still worked on is never closed.
    guard = cbus_gw_guard_new (&limits);
    assert (guard);
    for (int index = 0; index < 6; index++)
        assert (socketpair (AF_UNIX, SOCK_STREAM, 0, pairs [index]) == 0);
    conns [0] = cbus_gw_guard_open (guard, pairs [0][0], "a", 0);
    conns [1] = cbus_gw_guard_open (guard, pairs [1][0], "a", 0);
    conns [2] = cbus_gw_guard_open (guard, pairs [2][0], "a", 0);
    for (int index = 0; index < 3; index++)
        cbus_gw_guard_head (guard, conns [index], false, 10);
    cbus_gw_guard_answer (guard, conns [0], 200, 100);
    cbus_gw_guard_answer (guard, conns [1], CBUS_GW_STREAMED, 100);
    cbus_gw_guard_sent (guard, conns [1], 0, 100);
    assert (cbus_gw_guard_sweep (guard, 1100) == 0);
    cbus_gw_guard_sent (guard, conns [1], 50, 1500);        //  50 >= 40
    cbus_gw_guard_pause (guard, conns [1], 1600);           //  Waits 10 s for a page
    assert (cbus_gw_guard_sweep (guard, 3099) == 0);
    assert (cbus_gw_guard_sweep (guard, 3100) == 1);        //  200 bytes not sent in 3 s
    assert (s_shut_seen (pairs [0][1]) && !s_shut_seen (pairs [1][1]));
    cbus_gw_guard_sent (guard, conns [1], 50, 11600);       //  Clock from 10100 now
    assert (cbus_gw_guard_sweep (guard, 11600) == 0);       //  50 >= 50
    assert (cbus_gw_guard_sweep (guard, 11700) == 1);       //  50 < 60
    assert (s_shut_seen (pairs [1][1]));
    assert (cbus_gw_guard_sweep (guard, 1000000) == 0);     //  conns [2] still worked on
    assert (!s_shut_seen (pairs [2][1]));
    //  Room: after the waiting ones, those sending, longest first; a
    //  stream waiting for a service, a request worked on and fresh
    //  connections are kept.
    cbus_gw_guard_close (guard, conns [0]);
    cbus_gw_guard_close (guard, conns [1]);
    conns [0] = cbus_gw_guard_open (guard, pairs [3][0], "a", 2000000);
    conns [1] = cbus_gw_guard_open (guard, pairs [4][0], "a", 2000000);
    conns [3] = cbus_gw_guard_open (guard, pairs [5][0], "a", 2000000);
    cbus_gw_guard_head (guard, conns [0], false, 2000001);
    cbus_gw_guard_answer (guard, conns [0], CBUS_GW_STREAMED, 2000001);
    cbus_gw_guard_pause (guard, conns [0], 2000002);
    cbus_gw_guard_head (guard, conns [1], false, 2000001);
    cbus_gw_guard_answer (guard, conns [1], 10, 2000003);
    cbus_gw_guard_head (guard, conns [3], false, 2000001);
    cbus_gw_guard_answer (guard, conns [3], 10, 2000004);
    int more [2][2];
    assert (socketpair (AF_UNIX, SOCK_STREAM, 0, more [0]) == 0);
    assert (socketpair (AF_UNIX, SOCK_STREAM, 0, more [1]) == 0);
    //  At 4 open, none stale: the newcomer itself is closed (capped).
    extra = cbus_gw_guard_open (guard, more [0][0], "a", 2000005);
    assert (s_shut_seen (more [0][1]));
    assert (!s_shut_seen (pairs [3][1]) && !s_shut_seen (pairs [2][1]));
    assert (!s_shut_seen (pairs [4][1]) && !s_shut_seen (pairs [5][1]));
    //  200 ms on (header_timeout_ms / 5), the sender longest sending goes;
    //  the stream waiting for a service stays.
    cbus_gw_conn_t *late = cbus_gw_guard_open (guard, more [1][0], "a", 2000203);
    assert (s_shut_seen (pairs [4][1]) && !s_shut_seen (more [1][1]));
    assert (!s_shut_seen (pairs [3][1]) && !s_shut_seen (pairs [5][1]));
    cbus_gw_guard_close (guard, late);
    close (more [0][0]);
    close (more [0][1]);
    close (more [1][0]);
    close (more [1][1]);
    assert (cbus_gw_guard_report (guard, line, sizeof (line)) == 0);
    if (verbose)
        printf ("(%s) ", line);
    assert (strstr (line, " answer_slow=3 ") && strstr (line, " capped=1 "));
    cbus_gw_guard_close (guard, extra);
    for (int index = 0; index < 4; index++)
        cbus_gw_guard_close (guard, conns [index]);
    assert (cbus_gw_guard_size (guard) == 0);
    cbus_gw_guard_destroy (&guard);
    for (int index = 0; index < 6; index++) {
        close (pairs [index][0]);
        close (pairs [index][1]);
    }

    //  A kept-alive client between two requests is spared for 200 ms;
    //  with nothing else to close, the newcomer is closed (capped).
    guard = cbus_gw_guard_new (&limits);
    assert (guard);
    for (int index = 0; index < 6; index++) {
        assert (socketpair (AF_UNIX, SOCK_STREAM, 0, pairs [index]) == 0);
        if (index < 4) {
            conns [index] = cbus_gw_guard_open (guard, pairs [index][0], "a", 0);
            cbus_gw_guard_head (guard, conns [index], false, 1);
        }
    }
    cbus_gw_guard_done (guard, conns [0], 1000);
    conns [4] = cbus_gw_guard_open (guard, pairs [4][0], "a", 1199);
    assert (s_shut_seen (pairs [4][1]) && !s_shut_seen (pairs [0][1]));
    conns [5] = cbus_gw_guard_open (guard, pairs [5][0], "a", 1200);
    assert (s_shut_seen (pairs [0][1]) && !s_shut_seen (pairs [5][1]));
    assert (cbus_gw_guard_report (guard, line, sizeof (line)) == 0);
    assert (strstr (line, " idle_closed=1 capped=1 "));
    for (int index = 0; index < 6; index++) {
        cbus_gw_guard_close (guard, conns [index]);
        close (pairs [index][0]);
        close (pairs [index][1]);
    }
    assert (cbus_gw_guard_size (guard) == 0);
    cbus_gw_guard_destroy (&guard);

    //  Fair room: four connections of address "a", each with an answer
    //  just queued (none stale). A newcomer from "b" makes "a" give up its
    //  oldest; a newcomer from "a" itself is capped.
    guard = cbus_gw_guard_new (&limits);
    assert (guard);
    for (int index = 0; index < 6; index++) {
        assert (socketpair (AF_UNIX, SOCK_STREAM, 0, pairs [index]) == 0);
        if (index < 4) {
            conns [index] = cbus_gw_guard_open (guard, pairs [index][0], "a", index);
            cbus_gw_guard_head (guard, conns [index], false, 10 + index);
            cbus_gw_guard_answer (guard, conns [index], 100, 20 + index);
        }
    }
    conns [4] = cbus_gw_guard_open (guard, pairs [4][0], "b", 30);
    cbus_gw_guard_head (guard, conns [4], false, 30);
    assert (s_shut_seen (pairs [0][1]) && !s_shut_seen (pairs [4][1]));
    assert (!s_shut_seen (pairs [1][1]));
    conns [5] = cbus_gw_guard_open (guard, pairs [5][0], "a", 31);
    assert (s_shut_seen (pairs [5][1]) && !s_shut_seen (pairs [1][1]));
    assert (cbus_gw_guard_report (guard, line, sizeof (line)) == 0);
    assert (strstr (line, " answer_slow=0 ") && strstr (line, " capped=1 crowded=1 "));
    for (int index = 0; index < 6; index++) {
        cbus_gw_guard_close (guard, conns [index]);
        close (pairs [index][0]);
        close (pairs [index][1]);
    }
    assert (cbus_gw_guard_size (guard) == 0);
    cbus_gw_guard_destroy (&guard);
    printf ("OK\n");
}
