/* SPDX-License-Identifier: MIT */
/*
 * remote_feed: committed batches kept in memory for the remote-write
 * senders, so that a sender that keeps up sends what the writer has
 * just stored without reading it back and decoding it.  The writer tells
 * it of each remote_log row after its COMMIT, in log order, with the
 * batch when that only appended to its run (store_remote_row): such a
 * batch holds exactly the points its row names.  A sender sends only
 * rows it was told of (so that a row committed a moment ago is not read
 * back for want of its batch), takes the batches of the rows it is
 * about to send and reads from the database any row the feed lacks
 * (not plain, dropped for room, from before a restart): the database
 * stays the truth, the feed only a shortcut.  It holds at most
 * max_points points, the oldest going first.  Any thread ({lock}).
 */
#ifndef GW_REMOTE_FEED_H
#define GW_REMOTE_FEED_H

#include <stddef.h>
#include <stdint.h>

struct batch;
struct batch_series;
struct remote_points;
struct remote_row;
struct remote_series;

struct remote_feed;

/* The batches of a span of log rows, taken from the feed. */
struct remote_feed_span {
	struct batch			  **b;	/* references, one a row */
	const struct batch_series	 ***order; /* each one's series, by (kind, name) */
	size_t				   *sorted; /* order[i] is b[i]'s (built when needed) */
	size_t				   *hint; /* b[i]'s series after the last found */
	size_t				    n;
	size_t				    cap;
};

/* A feed told of the log's rows through row through. */
struct remote_feed	*remote_feed_new(size_t max_points, int64_t through);
/* Free f and drop its references.  NULL is fine. */
void			 remote_feed_free(struct remote_feed *f);
/*
 * Writer: log row id (ids only grow) of run run_id was committed, with
 * batch b when that only appended to its run (a reference is taken),
 * else NULL.
 */
void			 remote_feed_add(struct remote_feed *f, int64_t id,
			    int64_t run_id, struct batch *b);
/*
 * The last row the writer told of (or the last in the log at start, see
 * remote_feed_new): rows above it may be committed but not yet here.
 */
int64_t			 remote_feed_through(struct remote_feed *f);
/* Forget the batches of rows up to id (every sender is past them). */
void			 remote_feed_trim(struct remote_feed *f, int64_t id);
/* 1 when the feed holds the batch of row id of run run_id. */
int			 remote_feed_has(struct remote_feed *f, int64_t id,
			    int64_t run_id);
/*
 * Replace sp's batches with those of rows[0..n-1]: 1, or 0 (sp empty)
 * when the feed lacks any of them.
 */
int			 remote_feed_take(struct remote_feed *f,
			    const struct remote_row *rows, size_t n,
			    struct remote_feed_span *sp);
/* Drop sp's references (sp stays usable). */
void			 remote_feed_span_clear(struct remote_feed_span *sp);
void			 remote_feed_span_free(struct remote_feed_span *sp);
/*
 * A remote_source (remote_encode.h) reading a span: replace p's points
 * with series s's from sp's batches (arg), in [lo, hi].  Always 0.
 * Cheapest when asked for the series in the batches' own order (the
 * order a client sends them in, and the run's series ids follow).
 */
int			 remote_feed_points(void *arg,
			    const struct remote_series *s, int64_t lo,
			    int64_t hi, struct remote_points *p, char **cause);

#endif
