/*  =========================================================================
    cbus_http - HTTP requests of the command-line tools, through libcurl
    =========================================================================
*/
#include "cbus_http.h"
#include <stdarg.h>
#include <curl/curl.h>

//  Bytes of a body that is not a JSON error shown as its reason.
#define S_BODY_SHOWN    119

void
cbus_http_global_init (void)
{
    curl_global_init (CURL_GLOBAL_DEFAULT);
}

void
cbus_http_global_cleanup (void)
{
    curl_global_cleanup ();
}

void
cbus_http_reply_destroy (cbus_http_reply_t **self_p)
{
    assert (self_p);
    cbus_http_reply_t *self = *self_p;
    if (self) {
        cbus_buf_free (&self->body);
        json_decref (self->json);
        free (self);
        *self_p = NULL;
    }
}

bool
cbus_http_reply_ok (const cbus_http_reply_t *self)
{
    return self->status >= 200 && self->status < 300;
}

cbus_code_t
cbus_http_status_code (long status)
{
    if (status >= 200 && status < 300)
        return CBUS_CODE_OK;
    switch (status) {
        case 401: return CBUS_CODE_UNAUTHORIZED;
        case 404: return CBUS_CODE_NOT_FOUND;
        case 405: return CBUS_CODE_METHOD;
        case 413: return CBUS_CODE_TOO_LARGE;
        case 503: return CBUS_CODE_UNAVAILABLE;
        default:  return status >= 400 && status < 500? CBUS_CODE_INVALID: CBUS_CODE_INTERNAL;
    }
}

//  A reply without an answer.
static void
s_no_answer (cbus_http_reply_t *self, cbus_code_t code, const char *format, ...)
{
    self->status = 0;
    self->code = code;
    va_list args;
    va_start (args, format);
    vsnprintf (self->reason, sizeof (self->reason), format, args);
    va_end (args);
}

//  An answer's code and reason: OK, or its error body's "code" and
//  "message", or (a body that is not such JSON) the status's code and
//  the start of the body on one line.
static void
s_read_answer (cbus_http_reply_t *self)
{
    self->json = json_loadb (self->body.data? self->body.data: "", self->body.size,
                             JSON_DECODE_ANY, NULL);
    self->code = cbus_http_status_code (self->status);
    if (self->code == CBUS_CODE_OK)
        return;
    json_t *code = json_object_get (self->json, "code");
    if (json_is_string (code))
        self->code = cbus_code_from_name (json_string_value (code), json_string_length (code));
    json_t *message = json_object_get (self->json, "message");
    if (json_is_string (message)) {
        snprintf (self->reason, sizeof (self->reason), "%.200s", json_string_value (message));
        return;
    }
    size_t size = 0;
    for (size_t index = 0; index < self->body.size && size < S_BODY_SHOWN; index++) {
        char c = self->body.data [index];
        self->reason [size++] = (c == '\n' || c == '\r' || c == '\t')? ' ': c;
    }
    self->reason [size] = 0;
    if (size == 0)
        snprintf (self->reason, sizeof (self->reason), "(no body)");
}

//  libcurl's write callback: append, up to the limit.
typedef struct {
    cbus_buf_t *body;                   //  Where the answer goes
    size_t max_bytes;                   //  The limit
} s_sink_t;

static size_t
s_on_data (char *data, size_t size, size_t count, void *arg)
{
    s_sink_t *sink = (s_sink_t *) arg;
    if (sink->body->size + size * count > sink->max_bytes)
        return 0;                       //  Aborts the transfer
    cbus_buf_append (sink->body, data, size * count);
    return size * count;
}

cbus_http_reply_t *
cbus_http_request (const char *node, const char *path, const char *body,
                   const cbus_http_limits_t *limits)
{
    cbus_http_reply_t *self = (cbus_http_reply_t *) zmalloc (sizeof (cbus_http_reply_t));
    CURL *curl = curl_easy_init ();
    if (!curl) {
        s_no_answer (self, CBUS_CODE_INTERNAL, "cannot start libcurl");
        return self;
    }
    char *url = zsys_sprintf ("%s%s", node, path);
    char error [CURL_ERROR_SIZE] = "";
    s_sink_t sink = { &self->body, limits->max_bytes };
    struct curl_slist *headers = NULL;
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, (long) limits->connect_ms);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) limits->answer_ms);
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_data);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &sink);
    if (body) {
        headers = curl_slist_append (headers, "Content-Type: application/json");
        curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
    }
    CURLcode code = curl_easy_perform (curl);
    //  A connection never made has no connect time.
    curl_off_t connected = 0;
    curl_easy_getinfo (curl, CURLINFO_CONNECT_TIME_T, &connected);
    if (code == CURLE_WRITE_ERROR)
        s_no_answer (self, CBUS_CODE_TOO_LARGE, "%s answered more than %zu bytes", node,
                     limits->max_bytes);
    else
    if (code == CURLE_OPERATION_TIMEDOUT && connected > 0)
        s_no_answer (self, CBUS_CODE_UNAVAILABLE, "%s did not answer within %d s", node,
                     limits->answer_ms / 1000);
    else
    if (code != CURLE_OK)
        s_no_answer (self, CBUS_CODE_UNAVAILABLE, "cannot reach %s: %s", node,
                     *error? error: curl_easy_strerror (code));
    else {
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &self->status);
        s_read_answer (self);
    }
    curl_slist_free_all (headers);
    curl_easy_cleanup (curl);
    zstr_free (&url);
    return self;
}
