/*  =========================================================================
    cbus_gw_guard - deadlines and room for the gateway's HTTP connections

    libmicrohttpd's own timeout is an idle timer that every byte resets,
    so a client sending one byte every few seconds holds its connection
    forever. The guard keeps deadlines that bytes do not move:
    - a connection must complete a request head within header_timeout_ms
      of its opening, or of the end of its previous answer (this also
      bounds how long an idle keep-alive connection is kept);
    - a body must arrive at body_min_rate bytes a second on average, once
      header_timeout_ms of grace has passed since its head;
    - an answer queued must be sent in time: one of known size within
      header_timeout_ms plus its size at body_min_rate; a streamed one at
      body_min_rate on average after header_timeout_ms of grace, not
      counting the time the stream waits for a service (a client that
      pipelines requests and never reads its answers holds nothing);
    - when the open connections come within `room` of max_connections,
      connections are closed so that a newcomer finds a slot: those
      waiting for a request head (idle or trickling), oldest first, except
      a kept-alive one waiting for less than header_timeout_ms / 5 (a
      client between two requests); then those sending an answer for
      more than that, longest first. When none of these is left, the
      client address holding the most connections gives one up if it
      holds more than the newcomer's (its oldest waiting for a head, else
      its oldest sending an answer, else its oldest being answered, in
      any of these states however young: crowded), as Bitcoin Core evicts
      from the network group with most peers: a few addresses that keep
      the node full cannot crowd out a client elsewhere. Otherwise the
      newcomer itself is closed (capped). The gateway gives as address
      an IPv4 address or an IPv6 /64.
    Except for that fair share, a connection whose request is being
    worked out (no answer queued yet, or a stream waiting for its next
    page) is never closed by the guard: that wait is the node's, bounded
    by the services' timeouts.

    The guard closes a connection with shutdown (2) on its socket, so that
    libmicrohttpd sees the end and cleans up as for any client that left;
    the guard forgets the connection only when libmicrohttpd says it is
    closed (cbus_gw_guard_close), so no descriptor is used after its
    close. Each refusal is counted by kind; cbus_gw_guard_report gives one
    line for all of them, so an attack costs one log line per period and
    not one per connection.

    Cost: O(1) per event; the sweep is O(expired) for heads and O(bodies
    in flight) for body rates.
    =========================================================================
*/
#ifndef CBUS_GW_GUARD_H_INCLUDED
#define CBUS_GW_GUARD_H_INCLUDED

#include "cbus.h"

//  The kinds of refusal counted.
typedef enum {
    CBUS_GW_REFUSED_HEADER_LATE,    //  Head not complete in time: closed
    CBUS_GW_REFUSED_BODY_SLOW,      //  Body below the minimum rate: closed
    CBUS_GW_REFUSED_ANSWER_SLOW,    //  Answer not read in time, or closed
                                    //  while sending to make room
    CBUS_GW_REFUSED_IDLE_CLOSED,    //  Closed waiting for a head, to make room
    CBUS_GW_REFUSED_CAPPED,         //  Closed at once: too many from its address,
                                    //  or nothing to close near the cap
    CBUS_GW_REFUSED_CROWDED,        //  Closed near the cap for a newcomer: its
                                    //  address held the most connections
    CBUS_GW_REFUSED_FRAMING,        //  Answered 400/501 for its framing
    CBUS_GW_KEEPALIVE_ENDED,        //  Not a refusal: a kept-alive connection
                                    //  sent no new request in time (reported
                                    //  only beside refusals)
    CBUS_GW_REFUSED_KINDS
} cbus_gw_refusal_t;

typedef struct {
    int64_t header_timeout_ms;      //  A head completes within this
    uint64_t body_min_rate;         //  Body bytes a second, at least
    size_t max_connections;         //  Connections open at most
    size_t room;                    //  Slots kept free by closing waiting ones
} cbus_gw_guard_limits_t;

typedef struct _cbus_gw_guard_t cbus_gw_guard_t;
typedef struct _cbus_gw_conn_t cbus_gw_conn_t;

cbus_gw_guard_t *
    cbus_gw_guard_new (const cbus_gw_guard_limits_t *limits);
void
    cbus_gw_guard_destroy (cbus_gw_guard_t **self_p);

//  A connection opened on socket fd from a client address (any string
//  that is equal for connections from one client host; NULL for none).
//  It waits for a head. May close other connections to keep room.
//  Returns NULL when out of memory (the connection is then not guarded).
cbus_gw_conn_t *
    cbus_gw_guard_open (cbus_gw_guard_t *self, int fd, const char *address, int64_t now);
//  libmicrohttpd closed it: forget it. Safe with NULL.
void
    cbus_gw_guard_close (cbus_gw_guard_t *self, cbus_gw_conn_t *conn);
//  Its request head is complete; a body follows when has_body.
void
    cbus_gw_guard_head (cbus_gw_guard_t *self, cbus_gw_conn_t *conn, bool has_body,
                        int64_t now);
//  size more body bytes arrived.
void
    cbus_gw_guard_body (cbus_gw_guard_t *self, cbus_gw_conn_t *conn, size_t size);
//  The body is complete: the request is being answered.
void
    cbus_gw_guard_working (cbus_gw_guard_t *self, cbus_gw_conn_t *conn);
//  Its answer is queued: size bytes, or a stream when size is
//  CBUS_GW_STREAMED (then cbus_gw_guard_sent tells its progress).
#define CBUS_GW_STREAMED UINT64_MAX
void
    cbus_gw_guard_answer (cbus_gw_guard_t *self, cbus_gw_conn_t *conn, uint64_t size,
                          int64_t now);
//  A streamed answer has produced pos bytes (MHD asks for more).
//  Ends a pause.
void
    cbus_gw_guard_sent (cbus_gw_guard_t *self, cbus_gw_conn_t *conn, uint64_t pos,
                        int64_t now);
//  A streamed answer waits for a service: its clock stops until the next
//  cbus_gw_guard_sent. No-op unless it is sending.
void
    cbus_gw_guard_pause (cbus_gw_guard_t *self, cbus_gw_conn_t *conn, int64_t now);
//  Its answer is done: it waits for the next head.
void
    cbus_gw_guard_done (cbus_gw_guard_t *self, cbus_gw_conn_t *conn, int64_t now);
//  Close every connection past its deadline. Returns how many.
size_t
    cbus_gw_guard_sweep (cbus_gw_guard_t *self, int64_t now);
//  Count a refusal seen elsewhere (capped, framing).
void
    cbus_gw_guard_count (cbus_gw_guard_t *self, cbus_gw_refusal_t kind);
//  Connections open (including those being closed).
size_t
    cbus_gw_guard_size (cbus_gw_guard_t *self);
//  One line of the refusals counted since the last report, then reset
//  the counts. Returns 0 with the line, or -1 when there was no refusal.
int
    cbus_gw_guard_report (cbus_gw_guard_t *self, char *line, size_t size);

void
    cbus_gw_guard_test (bool verbose);

#endif
