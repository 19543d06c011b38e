/*  =========================================================================
    cbus_http - HTTP requests of the command-line tools, through libcurl

    The one place `chainbus net` and the wallet (`chainbus tx`) call
    libcurl. An answer comes back as one reply type with the four parts
    of the bus's cbus_reply_t (docs/architecture.md says why it is a type
    of its own): the HTTP status; the code a program decides by (an error
    body's "code", cbus_code.h's list, or the status's usual code when the
    body has none); the reason a person reads (the error body's
    "message"); and the body, as bytes and as parsed JSON. A request that
    got no answer (not reachable, timed out, an answer over the size
    limit) gets a reply made here, as cbus_client_request makes one for a
    bus call: status 0, code unavailable (too_large for an answer over
    the limit), a reason naming the node. Loopback is never proxied;
    other hosts follow the environment (http_proxy, no_proxy).
    =========================================================================
*/
#ifndef CBUS_HTTP_H_INCLUDED
#define CBUS_HTTP_H_INCLUDED

#include "cbus.h"

typedef struct {
    long status;                    //  HTTP status; 0 when no answer came
    cbus_code_t code;               //  CBUS_CODE_OK for a 2xx status
    char reason [CBUS_REASON_MAX];  //  "" for a 2xx status
    cbus_buf_t body;                //  The answer's bytes
    json_t *json;                   //  body parsed (any JSON value), or NULL
} cbus_http_reply_t;

//  How long a request may take and how much it may read.
typedef struct {
    int connect_ms;                 //  To accept the connection
    int answer_ms;                  //  For the whole request
    size_t max_bytes;               //  Largest answer read
} cbus_http_limits_t;

//  Once per program, before any request, and at its end.
void
    cbus_http_global_init (void);
void
    cbus_http_global_cleanup (void);

//  GET (body NULL) or POST a JSON body to node + path, node being
//  "http://host:port" (no trailing slash). Returns the reply, which the
//  caller destroys; never NULL.
cbus_http_reply_t *
    cbus_http_request (const char *node, const char *path, const char *body,
                       const cbus_http_limits_t *limits);
void
    cbus_http_reply_destroy (cbus_http_reply_t **self_p);
//  True for a 2xx status.
bool
    cbus_http_reply_ok (const cbus_http_reply_t *self);

//  The code a status has when its body gives none: 2xx ok, 401
//  unauthorized, 404 not_found, 405 method_not_allowed, 413 too_large,
//  503 unavailable, other 4xx invalid, anything else internal.
cbus_code_t
    cbus_http_status_code (long status);

#endif
