/* --metrics-file PATH (cmd_run.c): the worker's counters in the Prometheus
 * text exposition format (version 0.0.4), what node_exporter's textfile
 * collector and most monitoring agents read.  The file is written whole
 * beside PATH and renamed over it, so a reader never sees half of one; at
 * the first tick, every RENC_METRICS_INTERVAL seconds after, and at the
 * end.  No sample carries a timestamp (the textfile collector refuses
 * them): reencrypt_heartbeat_seconds says when it was written. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/error.h"
#include "io/file.h"
#include "reencrypt/cmd_run.h"

#define RENC_METRICS_INTERVAL 2.0 /* seconds between writes */

static double renc_metrics_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A label value as the format wants it: backslash, quote and newline
 * escaped. */
static void renc_metrics_label(char *out, size_t max, const char *v)
{
    size_t k = 0;
    for (; *v && k + 3 < max; v++) {
        if (*v == '\\' || *v == '"' || *v == '\n') {
            out[k++] = '\\';
            out[k++] = *v == '\n' ? 'n' : *v;
        } else {
            out[k++] = *v;
        }
    }
    out[k] = '\0';
}

/* The exposition text of p into buf; its length, or -1 when it did not fit. */
static int renc_metrics_text(char *buf, size_t max, const struct renc_metrics *m,
                             const struct renc_engine_progress *p, int final, double now)
{
    char shard[64];
    renc_metrics_label(shard, sizeof shard, m->shard ? m->shard : "");
    uint64_t failed = p->failed + m->failed_extra;
    double bps = p->elapsed_s > 0 ? p->bytes_finished / p->elapsed_s : 0;
    double rate = p->elapsed_s > 0 ? p->items_finished / p->elapsed_s : 0;
    int n = snprintf(
        buf, max,
        "# HELP reencrypt_info The worker: its command and shard.\n"
        "# TYPE reencrypt_info gauge\n"
        "reencrypt_info{command=\"%s\",shard=\"%s\"} 1\n"
        "# HELP reencrypt_blobs_total Blobs this worker finished, by outcome.\n"
        "# TYPE reencrypt_blobs_total counter\n"
        "reencrypt_blobs_total{outcome=\"done\"} %llu\n"
        "reencrypt_blobs_total{outcome=\"skipped\"} %llu\n"
        "reencrypt_blobs_total{outcome=\"not_renc\"} %llu\n"
        "reencrypt_blobs_total{outcome=\"failed\"} %llu\n"
        "# HELP reencrypt_blobs_listed Blobs in this worker's work list.\n"
        "# TYPE reencrypt_blobs_listed gauge\n"
        "reencrypt_blobs_listed %llu\n"
        "# HELP reencrypt_blobs_in_flight Blobs started and not finished.\n"
        "# TYPE reencrypt_blobs_in_flight gauge\n"
        "reencrypt_blobs_in_flight %llu\n"
        "# HELP reencrypt_bytes_total Bytes of blobs finished.\n"
        "# TYPE reencrypt_bytes_total counter\n"
        "reencrypt_bytes_total %llu\n"
        "# HELP reencrypt_bytes_listed Bytes in this worker's work list.\n"
        "# TYPE reencrypt_bytes_listed gauge\n"
        "reencrypt_bytes_listed %llu\n"
        "# HELP reencrypt_blobs_per_second Blobs finished per second since the start.\n"
        "# TYPE reencrypt_blobs_per_second gauge\n"
        "reencrypt_blobs_per_second %.3f\n"
        "# HELP reencrypt_bytes_per_second Bytes finished per second since the start.\n"
        "# TYPE reencrypt_bytes_per_second gauge\n"
        "reencrypt_bytes_per_second %.1f\n"
        "# HELP reencrypt_start_time_seconds When the worker started (Unix time).\n"
        "# TYPE reencrypt_start_time_seconds gauge\n"
        "reencrypt_start_time_seconds %.3f\n"
        "# HELP reencrypt_heartbeat_seconds When this file was written (Unix time).\n"
        "# TYPE reencrypt_heartbeat_seconds gauge\n"
        "reencrypt_heartbeat_seconds %.3f\n"
        "# HELP reencrypt_finished 1 once the worker's run is over, else 0.\n"
        "# TYPE reencrypt_finished gauge\n"
        "reencrypt_finished %d\n",
        m->cmd, shard, (unsigned long long)p->done, (unsigned long long)p->skipped,
        (unsigned long long)p->not_renc, (unsigned long long)failed,
        (unsigned long long)p->items_total,
        (unsigned long long)(p->items_started - p->items_finished),
        (unsigned long long)p->bytes_finished, (unsigned long long)p->bytes_total, rate, bps,
        m->start, now, final);
    return n < 0 || (size_t)n >= max ? -1 : n;
}

/* Writes the file now: the text beside it, then renamed over it. */
static int renc_metrics_write(struct renc_metrics *m, const struct renc_engine_progress *p,
                              int final)
{
    char text[4096], tmp[4200];
    double now = renc_metrics_now();
    if (m->start == 0)
        m->start = now - p->elapsed_s;
    int len = renc_metrics_text(text, sizeof text, m, p, final, now);
    if (len < 0)
        return -RENC_E_INVALID;
    int fd;
    /* 0644: counters only, for a collector running as another user. */
    int rc = renc_file_tmp_open(m->path, 0644, tmp, sizeof tmp, &fd);
    if (rc)
        return rc;
    if ((rc = renc_file_write_full(fd, text, (size_t)len))) {
        renc_file_abort(fd, tmp);
        return rc;
    }
    return renc_file_commit(fd, tmp, m->path);
}

void renc_metrics_tick(struct renc_metrics *m, const struct renc_engine_progress *p, int final)
{
    if (!m || !m->path)
        return;
    if (!final && m->written && p->elapsed_s - m->last < RENC_METRICS_INTERVAL)
        return;
    m->last = p->elapsed_s;
    m->written = 1;
    int rc = renc_metrics_write(m, p, final);
    if (rc && !m->said) {
        /* Said once: the run goes on (the counters are the engine's, the
         * file only shows them). */
        char q[RENC_PATH_QUOTE_MAX];
        renc_err(m->cmd, "--metrics-file %s: %s (the run goes on; said once)", QP(q, m->path),
                 renc_strerror(rc));
        m->said = 1;
    }
}
