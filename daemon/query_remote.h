/* SPDX-License-Identifier: MIT */
/*
 * query_remote: a remote-write sender's read-only view of the database
 * (schema/0004_remote_write.sql): its target's cursor, the log rows
 * after it, and the points they name, read back from chunks and tails.
 * One connection of its own, used by one sender thread only.  A sender
 * reads one request's rows and points inside query_remote_begin() and
 * query_remote_end(), one read transaction, so that a seal (tails rows
 * into a chunk) never shows it a range twice or not at all.
 */
#ifndef GW_QUERY_REMOTE_H
#define GW_QUERY_REMOTE_H

#include <stddef.h>
#include <stdint.h>

struct query_remote;

/* One remote_log row: a committed batch's run and step range. */
struct remote_row {
	int64_t		 id;
	int64_t		 run_id;
	int64_t		 first;
	int64_t		 last;
	int64_t		 n;		/* steps it carried, at most */
	double		 at;		/* when it was stored */
};

/* A run's labels and health as the sender needs them. */
struct remote_run {
	char		*key;
	char		*project;	/* NULL: none */
	int		 health;	/* 0 ok, 1 warning, 2 critical */
};

/* A series of a run. */
struct remote_series {
	int64_t		 id;
	int		 kind;		/* enum series_kind; -1 unknown */
	char		*name;
};

/* Points read back, ascending by step, growable. */
struct remote_points {
	int64_t		*steps;
	double		*vals;
	size_t		 n;
	size_t		 cap;
};

/* Open path read-only.  NULL and *cause on failure (":memory:" too). */
struct query_remote	*query_remote_open(const char *path, char **cause);
void			 query_remote_close(struct query_remote *qr);
/* Start and end one read transaction.  0, or -1 with *cause. */
int			 query_remote_begin(struct query_remote *qr,
			    char **cause);
void			 query_remote_end(struct query_remote *qr);
/* target's cursor into *sent (0 when it has none).  0, or -1 with *cause. */
int			 query_remote_cursor(struct query_remote *qr,
			    const char *target, int64_t *sent, char **cause);
/*
 * Up to max log rows with ids above after, in id order, into rows:
 * their count, or -1 with *cause.
 */
int			 query_remote_rows(struct query_remote *qr,
			    int64_t after, struct remote_row *rows, int max,
			    char **cause);
/* Run run_id into *r (allocated strings; free with remote_run_cleanup). */
int			 query_remote_run(struct query_remote *qr,
			    int64_t run_id, struct remote_run *r, char **cause);
void			 remote_run_cleanup(struct remote_run *r);
/*
 * The series of run run_id into *out (an allocated array of *n; free
 * with remote_series_free).  0, or -1 with *cause.
 */
int			 query_remote_series(struct query_remote *qr,
			    int64_t run_id, struct remote_series **out,
			    size_t *n, char **cause);
/*
 * How many series run run_id has, into *n, and their greatest id (0:
 * none).  0, or -1 with *cause.
 */
int			 query_remote_series_count(struct query_remote *qr,
			    int64_t run_id, int64_t *n, int64_t *max_id,
			    char **cause);
void			 remote_series_free(struct remote_series *s, size_t n);
/*
 * Replace p's points with series_id's in [lo, hi], ascending.  0, or
 * -1 with *cause (a damaged row fails the read: it is never skipped).
 */
int			 query_remote_points(struct query_remote *qr,
			    int64_t series_id, int64_t lo, int64_t hi,
			    struct remote_points *p, char **cause);
/* Room in p for more points after its n. */
void			 remote_points_reserve(struct remote_points *p,
			    size_t more);
void			 remote_points_cleanup(struct remote_points *p);
/* The last log row's id into *id (0: none).  0, or -1 with *cause. */
int			 query_remote_last(struct query_remote *qr, int64_t *id,
			    char **cause);
/* Log rows after after, and the steps they carry: 0, or -1 with *cause. */
int			 query_remote_backlog(struct query_remote *qr,
			    int64_t after, int64_t *rows, int64_t *steps,
			    char **cause);

#endif
