/* SPDX-License-Identifier: MIT */
/*
 * metrics: the daemon's own counters, served by GET /metrics in the
 * Prometheus text format.  Counters are _Atomic and updated from any
 * thread without locks; gauges are sampled when rendering.
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum metrics_route {
	METRICS_ROUTE_INGEST = 0,
	METRICS_ROUTE_QUERY,
	METRICS_ROUTE_EXPORT,
	METRICS_ROUTE_STATIC,
	METRICS_ROUTE_OTHER,
	METRICS_ROUTE_COUNT
};

/* One answered HTTP request on route with status. */
void	metrics_request(enum metrics_route route, unsigned int status);
/* Bytes of request bodies received. */
void	metrics_bytes_in(size_t n);
/* Points committed by the writer. */
void	metrics_points(size_t n);
/* A commit of nbatches requests that took seconds (BEGIN to COMMIT). */
void	metrics_commit(size_t nbatches, double seconds);
/* An ingest body parsed by ingest's fast path. */
void	metrics_fast_parse(void);
/* Requests refused with 503 because a queue was full. */
void	metrics_overloaded(void);
/* Runs evicted for going quiet (writer), and evicted runs restored. */
void	metrics_evicted(size_t n);
void	metrics_restored(void);
/* Gauges, published by their owner: what detection holds (gw-detect) ... */
void	metrics_detector(size_t runs, size_t evicted, size_t tensors);
/* ... and what the writer's cache holds (gw-writer). */
void	metrics_store_cache(size_t entries, size_t tail_points);

/*
 * The exposition text (allocated).  queue_depth and queue_points are
 * the writer queue's current depth; ws_clients the stream's viewers.
 */
char	*metrics_render(size_t queue_depth, size_t ws_clients);

/*
 * Append printf-style text to the growing buffer *buf (*len used of
 * *cap, NUL-terminated), for the exposition text of other modules.
 */
void	metrics_append(char **buf, size_t *len, size_t *cap, const char *fmt,
	    ...) __attribute__((format(printf, 4, 5)));
/* Append s as a label value, with the exposition format's escapes. */
void	metrics_append_label(char **buf, size_t *len, size_t *cap,
	    const char *s);

#endif
