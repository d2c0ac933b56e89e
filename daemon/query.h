/* SPDX-License-Identifier: MIT */
/*
 * query: the read side of the HTTP API (API.md, "Query").  Each struct
 * query is one read-only SQLite connection, used by one thread at a
 * time; WAL lets it read beside the writer without holding it up.
 * Parameters arrive as the raw query-string values (NULL when absent)
 * and are validated here, so the HTTP layer stays a router.  Every call
 * fills a reply: a status and an allocated JSON body, which is the
 * answer on 200 and {"error", "message"} otherwise.
 */
#ifndef GW_QUERY_H
#define GW_QUERY_H

#include <stddef.h>
#include <sys/types.h>

struct query;
struct query_export;

struct query_reply {
	unsigned int	 status;	/* 200, 400, 404 or 500 */
	char		*body;		/* allocated; the caller frees it */
};

#define QUERY_POINTS_MAX_DEFAULT	2000
#define QUERY_HEATMAP_BUCKETS_DEFAULT	500

/* Open a read-only connection to path.  NULL and *cause on failure. */
struct query	*query_open(const char *path, char **cause);
void		 query_close(struct query *q);

/*
 * GET /api/v1/runs?project=&status=&config=: each run brief
 * (store_rowjson_run_brief), or with config=1 whole, meta and all.
 */
void	query_runs(struct query *q, const char *project, const char *status,
	    const char *config, struct query_reply *r);
/* GET /api/v1/runs/{run} */
void	query_run(struct query *q, const char *run, struct query_reply *r);
/* GET /api/v1/runs/{run}/points?series=a,b&from=&to=&max= */
void	query_points(struct query *q, const char *run, const char *series,
	    const char *from, const char *to, const char *max,
	    struct query_reply *r);
/* GET /api/v1/runs/{run}/heatmap?from=&to=&buckets= */
void	query_heatmap(struct query *q, const char *run, const char *from,
	    const char *to, const char *buckets, struct query_reply *r);
/* GET /api/v1/alerts?run=&state=&since= */
void	query_alerts(struct query *q, const char *run, const char *state,
	    const char *since, struct query_reply *r);

/*
 * GET /metrics, the database's part: run health and firing alerts of
 * the runs not finished and seen since since (seconds since the epoch),
 * in the Prometheus text format.  A 200 with text, or an error reply.
 */
void	query_gauges(struct query *q, double since, struct query_reply *r);

/*
 * GET /api/v1/runs/{run}/export?format=csv|jsonl, streamed in constant
 * memory.  Opens its own connection to path (one read transaction for
 * the whole export).  NULL with r filled on error (unknown run, bad
 * format).  Used by one thread at a time.
 */
struct query_export	*query_export_open(const char *path, const char *run,
			    const char *format, struct query_reply *r);
/* Content-Type of the export ("text/csv", "application/x-ndjson"). */
const char		*query_export_content_type(struct query_export *x);
/* Up to max bytes of the export into buf: >0 bytes, 0 at the end, -1 on error. */
ssize_t			 query_export_read(struct query_export *x, char *buf,
			    size_t max);
void			 query_export_close(struct query_export *x);

#endif
