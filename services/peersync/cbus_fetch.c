/*  =========================================================================
    cbus_fetch - HTTP GETs off the actor's thread (libcurl)
    =========================================================================
*/
#include "cbus_fetch.h"
#include <curl/curl.h>

static size_t
s_write (char *data, size_t size, size_t count, void *arg)
{
    cbus_buf_t *body = (cbus_buf_t *) arg;
    if (body->size + size * count > CBUS_FETCH_MAX_BODY)
        return 0;                   //  Makes curl fail the transfer
    cbus_buf_append (body, data, size * count);
    return size * count;
}

//  What went wrong, in words an operator reads on GET /nodes and in the
//  dashboard (libcurl's own texts, "Couldn't connect to server", are its
//  wording, not ours).
static void
s_failure_words (cbus_buf_t *words, CURLcode rc)
{
    switch (rc) {
        case CURLE_COULDNT_CONNECT:
            cbus_buf_puts (words, "nothing accepts connections at that address");
            break;
        case CURLE_COULDNT_RESOLVE_HOST:
            cbus_buf_puts (words, "its host name does not resolve");
            break;
        case CURLE_OPERATION_TIMEDOUT:
            cbus_buf_puts (words, "no answer in time");
            break;
        case CURLE_WRITE_ERROR:
            cbus_buf_puts (words, "its answer was too large");
            break;
        case CURLE_GOT_NOTHING:
            cbus_buf_puts (words, "it closed the connection without an answer");
            break;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
            cbus_buf_puts (words, "the connection broke");
            break;
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
            cbus_buf_puts (words, "that is not an http:// or https:// address");
            break;
        default: {
            char text [64];
            snprintf (text, sizeof (text), "the request failed (libcurl error %d)", (int) rc);
            cbus_buf_puts (words, text);
        }
    }
}

static void
s_get (zsock_t *pipe, CURL *curl, const char *url)
{
    cbus_buf_t body = {0};
    curl_easy_reset (curl);
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) CBUS_FETCH_TIMEOUT_MS);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, (long) CBUS_FETCH_TIMEOUT_MS);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &body);
    CURLcode rc = curl_easy_perform (curl);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    else {
        cbus_buf_reset (&body);
        s_failure_words (&body, rc);
    }
    char code [16];
    snprintf (code, sizeof (code), "%ld", status);
    zsock_send (pipe, "sssb", "DONE", url, code, body.data ? body.data : "", body.size);
    cbus_buf_free (&body);
}

void
cbus_fetch_actor (zsock_t *pipe, void *args)
{
    (void) args;
    CURL *curl = curl_easy_init ();
    zsock_signal (pipe, 0);
    while (curl) {
        char *command = NULL, *url = NULL;
        if (zsock_recv (pipe, "ss", &command, &url) == -1)
            break;
        bool stop = !command || streq (command, "$TERM");
        if (!stop && streq (command, "GET") && url)
            s_get (pipe, curl, url);
        zstr_free (&command);
        zstr_free (&url);
        if (stop)
            break;
    }
    if (curl)
        curl_easy_cleanup (curl);
}

void
cbus_fetch_test (bool verbose)
{
    if (verbose)
        printf (" * cbus_fetch: ");
    zactor_t *fetch = zactor_new (cbus_fetch_actor, NULL);
    //  Nobody listens on this port: an answer with status 0, quickly.
    zsock_send (fetch, "ss", "GET", "http://127.0.0.1:1/node/info");
    char *command, *url, *code;
    zchunk_t *body;
    assert (zsock_recv (fetch, "sssc", &command, &url, &code, &body) == 0);
    assert (streq (command, "DONE") && streq (code, "0"));
    //  ... said in our words, not libcurl's.
    const char *words = "nothing accepts connections at that address";
    assert (zchunk_size (body) == strlen (words)
        &&  memcmp (zchunk_data (body), words, strlen (words)) == 0);
    zstr_free (&command);
    zstr_free (&url);
    zstr_free (&code);
    zchunk_destroy (&body);
    zactor_destroy (&fetch);
    if (verbose)
        printf ("OK\n");
}
