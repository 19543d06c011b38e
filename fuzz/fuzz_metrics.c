/*  =========================================================================
    fuzz_metrics - a metrics snapshot as the gateway gets it in a
    node.heartbeat's "metrics" field: cbus_metrics_decode, then
    cbus_metrics_render as GET /metrics does. The page must be lines of
    printable ASCII, each a comment or "name{labels} value"; every value
    finite and only a gauge's below 0; a histogram's buckets cumulative,
    its +Inf bucket its _count; the decoded registry encodes to a snapshot
    that decodes to the same page.
    =========================================================================
*/
#include "fuzz.h"
#include <math.h>

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc; (void) argv;
    fuzz_init ();
    return 0;
}

//  The values of a page: finite, not negative but a gauge's; within a
//  histogram's series (its text before le=) each bucket at least the one
//  before, and its _count the last (+Inf) bucket.
static void
s_check_values (const char *text)
{
    char type [16] = "";
    char series [1024] = "";
    double previous = 0;
    for (const char *line = text; *line; line = strchr (line, '\n') + 1) {
        const char *end = strchr (line, '\n');
        if (strncmp (line, "# TYPE ", 7) == 0) {
            FUZZ_CHECK (sscanf (line, "# TYPE %*s %15s", type) == 1);
            *series = 0;
            continue;
        }
        if (*line == '#')
            continue;
        const char *space = end;
        while (space > line && space [-1] != ' ')
            space--;
        double value = strtod (space, NULL);
        FUZZ_CHECK (isfinite (value));
        FUZZ_CHECK (streq (type, "gauge") || value >= 0);
        if (!streq (type, "histogram"))
            continue;
        const char *le = strstr (line, "le=\"");
        if (le && le < end) {
            size_t size = (size_t) (le - line);
            FUZZ_CHECK (size < sizeof (series));
            if (strlen (series) == size && memcmp (series, line, size) == 0)
                FUZZ_CHECK (value >= previous);
            else {
                memcpy (series, line, size);
                series [size] = 0;
            }
            previous = value;
        }
        else {
            const char *brace = memchr (line, '{', (size_t) (end - line));
            const char *name_end = brace ? brace : space - 1;
            if (name_end - line > 6 && memcmp (name_end - 6, "_count", 6) == 0)
                FUZZ_CHECK (value == previous);
        }
    }
}

//  The page as GET /metrics would serve it; checks its shape.
static char *
s_render (cbus_metrics_t *metrics)
{
    cbus_buf_t out = {0};
    cbus_metrics_source_t source = { "chainstore", metrics };
    cbus_metrics_render (&source, 1, &out);
    char *text = strdup (out.data ? out.data : "");
    FUZZ_CHECK (text);
    cbus_buf_free (&out);
    size_t size = strlen (text);
    FUZZ_CHECK (size == 0 || text [size - 1] == '\n');
    for (const char *line = text; *line; line = strchr (line, '\n') + 1) {
        const char *end = strchr (line, '\n');
        FUZZ_CHECK (end);
        for (const char *at = line; at < end; at++)
            FUZZ_CHECK (*at >= 0x20 && *at <= 0x7e);
        FUZZ_CHECK (*line == '#' || strncmp (line, "chainbus_", 9) == 0);
        FUZZ_CHECK (memchr (line, ' ', (size_t) (end - line)));
    }
    s_check_values (text);
    return text;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char reason [CBUS_REASON_MAX];
    cbus_metrics_t *metrics = cbus_metrics_decode (data, size, reason);
    if (!metrics) {
        FUZZ_CHECK (memchr (reason, 0, sizeof (reason)) && *reason);
        return 0;
    }
    char *page = s_render (metrics);
    cbus_buf_t snapshot = {0};
    FUZZ_CHECK (cbus_metrics_encode (metrics, &snapshot) == 0);
    cbus_metrics_t *again = cbus_metrics_decode ((const uint8_t *) snapshot.data,
                                                 snapshot.size, reason);
    FUZZ_CHECK (again);
    char *page_again = s_render (again);
    FUZZ_CHECK (streq (page, page_again));
    free (page);
    free (page_again);
    cbus_buf_free (&snapshot);
    cbus_metrics_destroy (&again);
    cbus_metrics_destroy (&metrics);
    return 0;
}
