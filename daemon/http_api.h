/* SPDX-License-Identifier: MIT */
/*
 * http_api: the HTTP side of gradwatchd on libmicrohttpd: routing,
 * authentication, request bodies and responses.  MHD's own threads do
 * only I/O and routing; parsing and queries run on two worker pools and
 * ingest commits on the writer thread, with the connection suspended
 * meanwhile, so no HTTP thread waits on the disk or on a slow query.
 */
#ifndef GW_HTTP_API_H
#define GW_HTTP_API_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct writer;
struct http;

/* Hooks into the other parts of the daemon; any may be NULL. */
struct http_hooks {
	/* Viewers connected to the stream, for /metrics. */
	size_t		(*stream_clients)(void *arg);
	/* More /metrics lines (allocated text), e.g. the notifier's. */
	char		*(*metrics_extra)(void *arg);
	/* Serve GET of a dashboard path: fills body/len/type, or returns -1. */
	int		(*static_file)(void *arg, const char *path,
			    const void **body, size_t *len, const char **type);
	void		*arg;
};

/*
 * Start listening as cfg says, handing ingest to w.  The pool's workers
 * open their own read-only connections to cfg->db_path.  NULL and an
 * allocated *cause on failure.
 */
struct http	*http_start(const struct config *cfg, struct writer *w,
		    const struct http_hooks *hooks, char **cause);
/* The bound HTTP port (useful when configured as 0). */
uint16_t	 http_port(struct http *h);
/* Stop accepting connections; requests in flight continue. */
void		 http_quiesce(struct http *h);
/* Finish the parse and query jobs already queued (they may feed the writer). */
void		 http_drain(struct http *h);
/*
 * Wait up to timeout_ms for every dispatched request to be answered,
 * then stop MHD and free h.  Call after the writer has stopped.
 */
void		 http_stop(struct http *h, int timeout_ms);

#endif
