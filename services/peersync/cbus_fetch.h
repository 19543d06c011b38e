/*  =========================================================================
    cbus_fetch - HTTP GETs off the actor's thread (libcurl)

    An actor: send it "GET" + url; it answers on its pipe with
    "DONE" + url + HTTP status (as text, "0" when the peer could not be
    reached) + body (or the error). Each request has a fixed timeout, so an
    unreachable or slow peer costs the caller nothing but a late answer.
    =========================================================================
*/
#ifndef CBUS_FETCH_H_INCLUDED
#define CBUS_FETCH_H_INCLUDED

#include "cbus.h"

//  Longest body kept; more is an error.
#define CBUS_FETCH_MAX_BODY (64 * 1024)
#define CBUS_FETCH_TIMEOUT_MS 3000

//  The actor; args unused.
void
    cbus_fetch_actor (zsock_t *pipe, void *args);

void
    cbus_fetch_test (bool verbose);

#endif
