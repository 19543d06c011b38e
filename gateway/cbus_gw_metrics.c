/*  =========================================================================
    cbus_gw_metrics - GET /metrics: every service's metrics in the
    Prometheus text format, and the gateway's own HTTP metrics

    Nothing is asked at scrape time. Each service's node.heartbeat
    carries its metrics snapshot (cbus_metrics) and resident memory; the
    heartbeat table keeps the last of each (cbus_heartbeats_set_beat).
    A scrape decodes the snapshots of the sources alive, checked against
    the table, and renders them after the gateway's own registry, which
    holds the HTTP metrics, the bus events the gateway lost, and the rows
    made here from the heartbeats: chainbus_service_up (the bus, the
    three services, the gateway and every other source heard: miners),
    resident memory and hash rate per source, and the tip's age from the
    chainstore's tip timestamp. A source whose heartbeats stopped shows
    up 0 and none of its metrics (a scrape of a dead target has none).
    =========================================================================
*/
#include "cbus_gw.h"

//  The processes whose restarts the gateway counts (cbus_gw_restarts: a
//  new boot id in a heartbeat).
static const char *s_restarted [] = { "bus", "chainstore", "mempool", "peersync" };

//  The services always listed by chainbus_service_up, heard or not.
static const char *s_core [] = { "bus", "chainstore", "mempool", "peersync", "gateway" };
#define S_CORE (sizeof (s_core) / sizeof (s_core [0]))

typedef struct {
    cbus_gateway_t *gateway;        //  Whose scrape
    cbus_metrics_source_t sources [CBUS_HEARTBEATS_METRICS_MAX + 1];    //  Rendered
    size_t count;                   //  Sources in use
    bool heard [S_CORE];            //  A core service was in the table
    int64_t now_mono;               //  The scrape's time
} s_scrape_t;

//  One source of the heartbeat table: its GATEWAY rows, and its
//  snapshot decoded when it is alive.
static void
s_scrape_source (const cbus_heartbeats_info_t *info, void *arg)
{
    s_scrape_t *scrape = (s_scrape_t *) arg;
    cbus_gateway_t *self = scrape->gateway;
    cbus_metrics_t *own = self->metrics;
    for (size_t core = 0; core < S_CORE; core++)
        if (streq (info->name, s_core [core]))
            scrape->heard [core] = true;
    if (!streq (info->name, "gateway") && !streq (info->name, "bus"))
        cbus_metrics_set (own, CBUS_METRIC_SERVICE_UP, info->name, NULL, info->alive);
    if (!info->alive)
        return;
    if (info->resident_bytes)
        cbus_metrics_set (own, CBUS_METRIC_SERVICE_RESIDENT, info->name, NULL,
                          (double) info->resident_bytes);
    if (info->has_rate)
        cbus_metrics_set (own, CBUS_METRIC_MINER_HASH_RATE, info->name, NULL,
                          (double) info->hash_rate);
    //  Our own registry is rendered as is; a source calling itself
    //  "gateway" on the bus is not us.
    if (!info->snapshot || streq (info->name, "gateway")
    ||  scrape->count == CBUS_HEARTBEATS_METRICS_MAX + 1)
        return;
    char reason [CBUS_REASON_MAX];
    cbus_metrics_t *metrics = cbus_metrics_decode (info->snapshot, info->snapshot_size, reason);
    if (!metrics) {
        if (self->verbose)
            zsys_debug ("metrics of src=%s ignored: %s", info->name, reason);
        return;
    }
    scrape->sources [scrape->count++] = (cbus_metrics_source_t) { info->name, metrics };
    double tip_time = cbus_metrics_value (metrics, CBUS_METRIC_CHAIN_TIP_TIMESTAMP, NULL, NULL);
    if (streq (info->name, "chainstore") && tip_time > 0)
        cbus_metrics_set (own, CBUS_METRIC_CHAIN_TIP_AGE, info->name, NULL,
                          (double) cbus_time_ms () / 1000.0 - tip_time);
}

//  The whole page into out.
static void
s_metrics_write (cbus_gateway_t *self, cbus_buf_t *out)
{
    cbus_metrics_t *own = self->metrics;
    static const cbus_metric_t made [] = {
        CBUS_METRIC_SERVICE_UP, CBUS_METRIC_SERVICE_RESIDENT, CBUS_METRIC_MINER_HASH_RATE,
        CBUS_METRIC_CHAIN_TIP_AGE, CBUS_METRIC_SERVICE_RESTARTS
    };
    for (size_t index = 0; index < sizeof (made) / sizeof (made [0]); index++)
        cbus_metrics_forget (own, made [index], NULL, NULL);
    s_scrape_t scrape = { .gateway = self, .now_mono = cbus_mono_ms () };
    scrape.sources [scrape.count++] = (cbus_metrics_source_t) { "gateway", own };
    cbus_heartbeats_each (self->heartbeats, scrape.now_mono, s_scrape_source, &scrape);
    //  The bus publishes no heartbeat of its own on every build: it is up
    //  when anyone's comes through it (as GET /status says).
    for (size_t core = 0; core < S_CORE; core++)
        if (!scrape.heard [core])
            cbus_metrics_set (own, CBUS_METRIC_SERVICE_UP, s_core [core], NULL, 0);
    cbus_metrics_set (own, CBUS_METRIC_SERVICE_UP, "bus", NULL,
                      cbus_heartbeats_any_alive (self->heartbeats, scrape.now_mono));
    cbus_metrics_set (own, CBUS_METRIC_SERVICE_UP, "gateway", NULL, 1);
    for (size_t index = 0; index < sizeof (s_restarted) / sizeof (char *); index++)
        cbus_metrics_add (own, CBUS_METRIC_SERVICE_RESTARTS, s_restarted [index], NULL,
                          cbus_gw_restarts (self, s_restarted [index]));
    cbus_metrics_render (scrape.sources, scrape.count, out);
    for (size_t index = 1; index < scrape.count; index++)
        cbus_metrics_destroy (&scrape.sources [index].metrics);
}

static void
s_metrics_start (cbus_gw_request_t *request)
{
    cbus_buf_reset (&request->out);
    s_metrics_write (request->gateway, &request->out);
    request->out_type = "text/plain; version=0.0.4; charset=utf-8";
    request->status = MHD_HTTP_OK;
}

void
cbus_gw_metrics_http (cbus_gw_request_t *request)
{
    cbus_gateway_t *self = request->gateway;
    //  Label values from a bounded set: a route's path as its table spells
    //  it, or what answered a path that is no route.
    const char *route = request->route ? request->route->path
                      : request->file_type && request->status < 400 ? "static" : "other";
    char code [8];
    snprintf (code, sizeof (code), "%u", request->status);
    cbus_metrics_add (self->metrics, CBUS_METRIC_HTTP_REQUESTS, route, code, 1);
    double seconds = (double) (zclock_usecs () - request->started_us) / 1e6;
    cbus_metrics_observe (self->metrics, CBUS_METRIC_HTTP_DURATION, route, NULL, seconds);
}

const cbus_gw_route_t cbus_gw_metrics_routes [] = {
    { "/metrics",   "GET", false, false, s_metrics_start },
    { NULL }
};
