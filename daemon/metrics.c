/* SPDX-License-Identifier: MIT */
/* metrics: lock-free counters and their Prometheus rendering. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "xmalloc.h"

#define METRICS_STATUS_CLASSES	6	/* 0 = other, 1xx..5xx */
/* Commit latency histogram bounds, seconds (Prometheus "le"). */
static const double metrics_commit_bounds[] = {
	0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5
};
#define METRICS_NBOUNDS \
	(sizeof metrics_commit_bounds / sizeof metrics_commit_bounds[0])

static _Atomic uint64_t metrics_requests[METRICS_ROUTE_COUNT]
    [METRICS_STATUS_CLASSES];
static _Atomic uint64_t metrics_bytes;
static _Atomic uint64_t metrics_npoints;
static _Atomic uint64_t metrics_commits;
static _Atomic uint64_t metrics_committed_batches;
static _Atomic uint64_t metrics_commit_usec_sum;
static _Atomic uint64_t metrics_commit_hist[METRICS_NBOUNDS];
static _Atomic uint64_t metrics_refused;
static _Atomic uint64_t metrics_fast_parses;
static _Atomic uint64_t metrics_evictions;
static _Atomic uint64_t metrics_restores;
/* Gauges: the last value their owner published. */
static _Atomic uint64_t metrics_runs_whole;
static _Atomic uint64_t metrics_runs_evicted;
static _Atomic uint64_t metrics_tensors;
static _Atomic uint64_t metrics_cached;
static _Atomic uint64_t metrics_tail_points;

static const char *const metrics_route_names[METRICS_ROUTE_COUNT] = {
	"ingest", "query", "export", "static", "other"
};

void
metrics_request(enum metrics_route route, unsigned int status)
{
	unsigned int	c = status / 100;

	if (c >= METRICS_STATUS_CLASSES)
		c = 0;
	atomic_fetch_add_explicit(&metrics_requests[route][c], 1,
	    memory_order_relaxed);
}

void
metrics_bytes_in(size_t n)
{
	atomic_fetch_add_explicit(&metrics_bytes, n, memory_order_relaxed);
}

void
metrics_points(size_t n)
{
	atomic_fetch_add_explicit(&metrics_npoints, n, memory_order_relaxed);
}

void
metrics_commit(size_t nbatches, double seconds)
{
	size_t	i;

	atomic_fetch_add_explicit(&metrics_commits, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&metrics_committed_batches, nbatches,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&metrics_commit_usec_sum,
	    (uint64_t)(seconds * 1e6), memory_order_relaxed);
	for (i = 0; i < METRICS_NBOUNDS; i++)
		if (seconds <= metrics_commit_bounds[i])
			atomic_fetch_add_explicit(&metrics_commit_hist[i], 1,
			    memory_order_relaxed);
}

void
metrics_fast_parse(void)
{
	atomic_fetch_add_explicit(&metrics_fast_parses, 1,
	    memory_order_relaxed);
}

void
metrics_overloaded(void)
{
	atomic_fetch_add_explicit(&metrics_refused, 1, memory_order_relaxed);
}

void
metrics_evicted(size_t n)
{
	atomic_fetch_add_explicit(&metrics_evictions, n, memory_order_relaxed);
}

void
metrics_restored(void)
{
	atomic_fetch_add_explicit(&metrics_restores, 1, memory_order_relaxed);
}

void
metrics_detector(size_t runs, size_t evicted, size_t tensors)
{
	atomic_store_explicit(&metrics_runs_whole, runs, memory_order_relaxed);
	atomic_store_explicit(&metrics_runs_evicted, evicted,
	    memory_order_relaxed);
	atomic_store_explicit(&metrics_tensors, tensors, memory_order_relaxed);
}

void
metrics_store_cache(size_t entries, size_t tail_points)
{
	atomic_store_explicit(&metrics_cached, entries, memory_order_relaxed);
	atomic_store_explicit(&metrics_tail_points, tail_points,
	    memory_order_relaxed);
}

#define LOAD(x)	((unsigned long long)atomic_load_explicit(&(x), \
		    memory_order_relaxed))

char *
metrics_render(size_t queue_depth, size_t ws_clients)
{
	char		*buf;
	size_t		 cap = 8192, n = 0, i, r, c;
	unsigned long long commits = LOAD(metrics_commits);

	buf = xmalloc(cap);
#define OUT(...)	(n += (size_t)snprintf(buf + n, cap - n, __VA_ARGS__))
	OUT("# HELP gradwatch_http_requests_total HTTP requests answered.\n"
	    "# TYPE gradwatch_http_requests_total counter\n");
	for (r = 0; r < METRICS_ROUTE_COUNT; r++)
		for (c = 1; c < METRICS_STATUS_CLASSES; c++)
			if (LOAD(metrics_requests[r][c]) != 0)
				OUT("gradwatch_http_requests_total{route=\"%s\","
				    "code=\"%zuxx\"} %llu\n",
				    metrics_route_names[r], c,
				    LOAD(metrics_requests[r][c]));
	OUT("# HELP gradwatch_ingest_points_total Points durably committed.\n"
	    "# TYPE gradwatch_ingest_points_total counter\n"
	    "gradwatch_ingest_points_total %llu\n", LOAD(metrics_npoints));
	OUT("# HELP gradwatch_ingest_bytes_total Request body bytes received.\n"
	    "# TYPE gradwatch_ingest_bytes_total counter\n"
	    "gradwatch_ingest_bytes_total %llu\n", LOAD(metrics_bytes));
	OUT("# HELP gradwatch_ingest_fast_parses_total Ingest bodies "
	    "the fast path parsed (the rest went through Jansson).\n"
	    "# TYPE gradwatch_ingest_fast_parses_total counter\n"
	    "gradwatch_ingest_fast_parses_total %llu\n",
	    LOAD(metrics_fast_parses));
	OUT("# HELP gradwatch_ingest_overloaded_total Requests refused "
	    "with 503 (queue full).\n"
	    "# TYPE gradwatch_ingest_overloaded_total counter\n"
	    "gradwatch_ingest_overloaded_total %llu\n", LOAD(metrics_refused));
	OUT("# HELP gradwatch_writer_queue_depth Requests waiting for "
	    "the writer.\n"
	    "# TYPE gradwatch_writer_queue_depth gauge\n"
	    "gradwatch_writer_queue_depth %zu\n", queue_depth);
	OUT("# HELP gradwatch_commit_batches_total Requests committed.\n"
	    "# TYPE gradwatch_commit_batches_total counter\n"
	    "gradwatch_commit_batches_total %llu\n",
	    LOAD(metrics_committed_batches));
	OUT("# HELP gradwatch_commit_seconds Group commit latency.\n"
	    "# TYPE gradwatch_commit_seconds histogram\n");
	for (i = 0; i < METRICS_NBOUNDS; i++)
		OUT("gradwatch_commit_seconds_bucket{le=\"%g\"} %llu\n",
		    metrics_commit_bounds[i], LOAD(metrics_commit_hist[i]));
	OUT("gradwatch_commit_seconds_bucket{le=\"+Inf\"} %llu\n"
	    "gradwatch_commit_seconds_sum %.6f\n"
	    "gradwatch_commit_seconds_count %llu\n", commits,
	    (double)LOAD(metrics_commit_usec_sum) / 1e6, commits);
	OUT("# HELP gradwatch_stream_clients WebSocket viewers connected.\n"
	    "# TYPE gradwatch_stream_clients gauge\n"
	    "gradwatch_stream_clients %zu\n", ws_clients);
/* One sample of a metric without labels: name, type and help are literals. */
#define OUT1(name, type, help, v)					\
	OUT("# HELP " name " " help "\n# TYPE " name " " type "\n"	\
	    name " %llu\n", (v))
	OUT1("gradwatch_runs_in_memory", "gauge",
	    "Runs whose detection state is held whole.",
	    LOAD(metrics_runs_whole));
	OUT1("gradwatch_runs_evicted", "gauge", "Unfinished runs quiet past "
	    "run-idle-evict, their tensors' state evicted.",
	    LOAD(metrics_runs_evicted));
	OUT1("gradwatch_tensors_in_memory", "gauge",
	    "Tensors whose detection state is in memory.",
	    LOAD(metrics_tensors));
	OUT1("gradwatch_series_cached", "gauge",
	    "Runs and series in the writer's cache.", LOAD(metrics_cached));
	OUT1("gradwatch_tail_points_cached", "gauge",
	    "Points of open tails the writer holds in memory.",
	    LOAD(metrics_tail_points));
	OUT1("gradwatch_run_evictions_total", "counter",
	    "Runs evicted for going quiet.", LOAD(metrics_evictions));
	OUT1("gradwatch_run_restores_total", "counter",
	    "Evicted runs restored by their next step.",
	    LOAD(metrics_restores));
#undef OUT1
#undef OUT
	if (n >= cap)
		buf[cap - 1] = '\0';
	return buf;
}

void
metrics_append_label(char **buf, size_t *len, size_t *cap, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*len + 3 > *cap) {
			*cap *= 2;
			*buf = xreallocarray(*buf, 1, *cap);
		}
		if (*s == '\\' || *s == '"' || *s == '\n') {
			(*buf)[(*len)++] = '\\';
			(*buf)[(*len)++] = *s == '\n' ? 'n' : *s;
		} else
			(*buf)[(*len)++] = *s;
	}
	(*buf)[*len] = '\0';
}

void
metrics_append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list	ap;
	int	k;

	for (;;) {
		va_start(ap, fmt);
		k = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
		va_end(ap);
		if (k >= 0 && (size_t)k < *cap - *len)
			break;
		*cap *= 2;
		*buf = xreallocarray(*buf, 1, *cap);
	}
	*len += (size_t)k;
}
