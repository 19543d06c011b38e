/*  =========================================================================
    cbus_tap - `chainbus tap`: every bus event as one JSON line
    =========================================================================
*/
#include "cbus_tap.h"

int
cbus_tap_run (cbus_config_t *config, const char *prefix)
{
    //  A remote node's bus is tcp: this machine's key must be listed.
    char reason [CBUS_REASON_MAX];
    cbus_endpoint_t *keys = cbus_endpoint_new (config, "tap", reason);
    if (!keys) {
        fprintf (stderr, "chainbus tap: %s\n", reason);
        return 2;
    }
    char *endpoint = cbus_config_endpoint (config, "bus-out");
    zsock_t *sub = cbus_endpoint_new_sub (endpoint, prefix);
    zstr_free (&endpoint);
    if (!sub) {
        fprintf (stderr, "chainbus tap: cannot connect to the bus\n");
        cbus_endpoint_destroy (&keys);
        return 1;
    }
    zsock_set_rcvhwm (sub, 1000000);
    zsock_set_maxmsgsize (sub, CBUS_MSG_MAX_BYTES);
    cbus_buf_t line = {0};
    int rc = 0;
    while (!zsys_interrupted) {
        cbus_event_t *event = cbus_event_recv (sub);
        if (!event)
            continue;               //  Interrupted, or malformed (logged)
        cbus_buf_reset (&line);
        cbus_buf_puts (&line, "{\"topic\": ");
        cbus_json_write_string (&line, event->topic, strlen (event->topic));
        cbus_buf_printf (&line, ", \"sequence\": %" PRIu64 ", \"body\": ", event->sequence);
        size_t before = line.size;
        if (!event->decoded || cbus_json_write (&line, cbus_event_map (event))) {
            line.size = before;
            cbus_buf_puts (&line, "null");
        }
        cbus_buf_puts (&line, "}\n");
        cbus_event_destroy (&event);
        if (fwrite (line.data, 1, line.size, stdout) != line.size || fflush (stdout)) {
            rc = 1;                 //  Reader went away
            break;
        }
    }
    cbus_buf_free (&line);
    zsock_destroy (&sub);
    cbus_endpoint_destroy (&keys);
    return rc;
}
