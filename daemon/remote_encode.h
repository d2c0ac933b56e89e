/* SPDX-License-Identifier: MIT */
/*
 * remote_encode: gradwatch's series as Prometheus series (docs/API.md,
 * "Remote write"), and a remote-write 1.0 request body: a WriteRequest
 * (proto/remote_write.proto, packed by libprotobuf-c) compressed with
 * snappy's block format.  A struct remote_enc belongs to one sender
 * thread; it copies what it is given.
 */
#ifndef GW_REMOTE_ENCODE_H
#define GW_REMOTE_ENCODE_H

#include <stddef.h>
#include <stdint.h>

struct remote_points;
struct remote_row;
struct remote_run;
struct remote_series;

struct remote_enc;

struct remote_enc	*remote_enc_new(void);
void			 remote_enc_free(struct remote_enc *e);
/* Forget every series added: start the next request. */
void			 remote_enc_reset(struct remote_enc *e);
/* Samples added since the last reset. */
size_t			 remote_enc_samples(const struct remote_enc *e);
/*
 * Where a span's points come from: points(arg, s, lo, hi, p, cause)
 * replaces p's points with series s's at steps [lo, hi], ascending and
 * distinct; 0, or -1 with *cause.  The database (query_remote_points
 * inside its read transaction) or batches kept in memory (remote_feed).
 */
struct remote_source {
	int	(*points)(void *arg, const struct remote_series *s, int64_t lo,
		    int64_t hi, struct remote_points *p, char **cause);
	void	*arg;
};

/*
 * Add the points of run (its series ser[0..nser-1]) at steps [lo, hi],
 * read from src.  rows[0..nrows-1] are the log rows of the span: a step
 * without a time takes the stored_at of the last of them that covers
 * it.  Layer series keep only steps that are multiples of layer_every.
 * 0, or -1 with *cause.
 */
int			 remote_enc_span(struct remote_enc *e,
			    const struct remote_source *src,
			    const struct remote_run *run,
			    const struct remote_series *ser, size_t nser,
			    int64_t lo, int64_t hi, const struct remote_row *rows,
			    size_t nrows, int64_t layer_every, char **cause);
int			 remote_enc_body(struct remote_enc *e, const char **body,
			    size_t *len, char **cause);
/* The Prometheus metric name of a series kind, or NULL: not sent. */
const char		*remote_enc_metric(int kind);

#endif
