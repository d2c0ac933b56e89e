/* SPDX-License-Identifier: MIT */
/*
 * query_remote: reads of the remote-write log and of the points it
 * names, for one sender thread; see query_remote.h.  Points come from
 * chunk and tail rows through the same bounded index range as the query
 * routes' (no row spans more than series.max_span steps).
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "batch.h"
#include "chunk.h"
#include "query_remote.h"
#include "xmalloc.h"

#define QUERY_REMOTE_BUSY_MS	5000
/*
 * Decoded chunks kept, one a slot, a series to the slot of its id: a
 * request takes about REMOTE_MAX_SAMPLES / series steps of a run, a
 * sealed chunk holds thousands, so a lagging sender meets each chunk in
 * many requests running and decodes it once.  At most 512 chunks of
 * STORE_CHUNK_MAX (8,192) points: 64 MiB; a page of float32 norms holds
 * about 4,500.
 */
#define QR_CACHE_SLOTS		512

enum qr_stmt {
	QR_BEGIN,
	QR_COMMIT,
	QR_CURSOR,
	QR_ROWS,
	QR_RUN,
	QR_SERIES,
	QR_NSERIES,
	QR_POINTS,
	QR_CHUNK,
	QR_BACKLOG,
	QR_LAST,
	QR_COUNT
};

#define QR_OVERLAP							\
	" WHERE series_id = ?1 AND first_step <= ?3 AND last_step >= ?2"	\
	" AND first_step >= ?2 - (SELECT max_span FROM series WHERE id = ?1)"

static const char *const qr_sql[QR_COUNT] = {
	[QR_BEGIN] = "BEGIN",
	[QR_COMMIT] = "COMMIT",
	[QR_CURSOR] = "SELECT sent_id FROM remote_cursors WHERE target = ?1",
	[QR_ROWS] =
	    "SELECT id, run_id, first_step, last_step, n, stored_at"
	    " FROM remote_log WHERE id > ?1 ORDER BY id LIMIT ?2",
	[QR_RUN] = "SELECT key, project, health FROM runs WHERE id = ?1",
	[QR_SERIES] =
	    "SELECT id, kind, name FROM series WHERE run_id = ?1 ORDER BY id",
	[QR_NSERIES] = "SELECT count(*), coalesce(max(id), 0) FROM series "
	    "WHERE run_id = ?1",
	[QR_LAST] = "SELECT coalesce(max(id), 0) FROM remote_log",
	[QR_POINTS] =
	    "SELECT 1, id, first_step, last_step, n, NULL FROM chunks"
	    QR_OVERLAP
	    " UNION ALL SELECT 0, id, first_step, last_step, n, data FROM tails"
	    QR_OVERLAP,
	[QR_CHUNK] = "SELECT data FROM chunks WHERE id = ?1",
	[QR_BACKLOG] =
	    "SELECT count(*), total(n) FROM remote_log WHERE id > ?1",
};

/* A decoded chunk row, known by what identifies it without its blob. */
struct qr_chunk {
	int64_t		 series_id;	/* 0: empty */
	int64_t		 id, first, last, n;
	int64_t		*steps;
	double		*vals;
	size_t		 cap;
};

struct query_remote {
	sqlite3		*db;
	sqlite3_stmt	*st[QR_COUNT];
	int64_t		*dsteps;	/* a decoded tails row */
	double		*dvals;
	size_t		 dcap;
	struct qr_chunk	*cache;		/* QR_CACHE_SLOTS, or NULL */
};

static int
query_remote_err(struct query_remote *qr, char **cause, const char *what)
{
	xasprintf(cause, "query_remote: %s: %s", what, sqlite3_errmsg(qr->db));
	return -1;
}

struct query_remote *
query_remote_open(const char *path, char **cause)
{
	struct query_remote	*qr;
	int			 i;

	if (strcmp(path, ":memory:") == 0) {
		xasprintf(cause, "remote-write needs a database file, not "
		    ":memory:");
		return NULL;
	}
	qr = xcalloc(1, sizeof *qr);
	if (sqlite3_open_v2(path, &qr->db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		xasprintf(cause, "%s: %s", path, qr->db != NULL ?
		    sqlite3_errmsg(qr->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(qr->db, QUERY_REMOTE_BUSY_MS);
	/*
	 * Pages read, never mapped: the database grows all the time under
	 * ingest, and SQLite maps a grown file anew at each read transaction
	 * (one a request): unmapping tens of MB a time stalls every core
	 * the daemon runs on (TLB shootdowns), the writer's too.
	 */
	sqlite3_exec(qr->db, "PRAGMA mmap_size = 0", NULL, NULL, NULL);
	for (i = 0; i < QR_COUNT; i++)
		if (sqlite3_prepare_v3(qr->db, qr_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &qr->st[i], NULL) != SQLITE_OK) {
			xasprintf(cause, "%s: %s", path, sqlite3_errmsg(qr->db));
			goto fail;
		}
	return qr;

fail:
	query_remote_close(qr);
	return NULL;
}

void
query_remote_close(struct query_remote *qr)
{
	int	i;

	if (qr == NULL)
		return;
	for (i = 0; i < QR_COUNT; i++)
		sqlite3_finalize(qr->st[i]);
	sqlite3_close(qr->db);
	free(qr->dsteps);
	free(qr->dvals);
	if (qr->cache != NULL)
		for (i = 0; i < QR_CACHE_SLOTS; i++) {
			free(qr->cache[i].steps);
			free(qr->cache[i].vals);
		}
	free(qr->cache);
	free(qr);
}

static sqlite3_stmt *
query_remote_stmt(struct query_remote *qr, enum qr_stmt i)
{
	sqlite3_reset(qr->st[i]);
	sqlite3_clear_bindings(qr->st[i]);
	return qr->st[i];
}

int
query_remote_begin(struct query_remote *qr, char **cause)
{
	sqlite3_stmt	*s = query_remote_stmt(qr, QR_BEGIN);

	if (sqlite3_step(s) != SQLITE_DONE)
		return query_remote_err(qr, cause, "begin");
	sqlite3_reset(s);
	return 0;
}

void
query_remote_end(struct query_remote *qr)
{
	int	i;

	for (i = 0; i < QR_COUNT; i++)
		sqlite3_reset(qr->st[i]);
	if (!sqlite3_get_autocommit(qr->db)) {
		sqlite3_step(qr->st[QR_COMMIT]);
		sqlite3_reset(qr->st[QR_COMMIT]);
	}
}

int
query_remote_cursor(struct query_remote *qr, const char *target,
    int64_t *sent, char **cause)
{
	sqlite3_stmt	*s = query_remote_stmt(qr, QR_CURSOR);
	int		 rc;

	sqlite3_bind_text(s, 1, target, -1, SQLITE_STATIC);
	*sent = 0;
	if ((rc = sqlite3_step(s)) == SQLITE_ROW)
		*sent = sqlite3_column_int64(s, 0);
	else if (rc != SQLITE_DONE)
		return query_remote_err(qr, cause, "cursor");
	sqlite3_reset(s);
	return 0;
}

int
query_remote_rows(struct query_remote *qr, int64_t after,
    struct remote_row *rows, int max, char **cause)
{
	sqlite3_stmt	*s = query_remote_stmt(qr, QR_ROWS);
	int		 n = 0, rc;

	sqlite3_bind_int64(s, 1, after);
	sqlite3_bind_int(s, 2, max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && n < max) {
		rows[n].id = sqlite3_column_int64(s, 0);
		rows[n].run_id = sqlite3_column_int64(s, 1);
		rows[n].first = sqlite3_column_int64(s, 2);
		rows[n].last = sqlite3_column_int64(s, 3);
		rows[n].n = sqlite3_column_int64(s, 4);
		rows[n].at = sqlite3_column_double(s, 5);
		n++;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return query_remote_err(qr, cause, "log rows");
	sqlite3_reset(s);
	return n;
}

static char *
query_remote_text(sqlite3_stmt *s, int col)
{
	const unsigned char	*t = sqlite3_column_text(s, col);

	return t != NULL ? xstrdup((const char *)t) : NULL;
}

int
query_remote_run(struct query_remote *qr, int64_t run_id,
    struct remote_run *r, char **cause)
{
	sqlite3_stmt	*s = query_remote_stmt(qr, QR_RUN);
	const char	*health;
	int		 rc;

	memset(r, 0, sizeof *r);
	sqlite3_bind_int64(s, 1, run_id);
	if ((rc = sqlite3_step(s)) != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			xasprintf(cause, "query_remote: no run %lld",
			    (long long)run_id);
		else
			query_remote_err(qr, cause, "run");
		return -1;
	}
	r->key = query_remote_text(s, 0);
	r->project = query_remote_text(s, 1);
	health = (const char *)sqlite3_column_text(s, 2);
	r->health = health == NULL ? 0 : strcmp(health, "critical") == 0 ? 2 :
	    strcmp(health, "warning") == 0 ? 1 : 0;
	sqlite3_reset(s);
	return 0;
}

void
remote_run_cleanup(struct remote_run *r)
{
	free(r->key);
	free(r->project);
	memset(r, 0, sizeof *r);
}

int
query_remote_series(struct query_remote *qr, int64_t run_id,
    struct remote_series **out, size_t *n, char **cause)
{
	sqlite3_stmt		*s = query_remote_stmt(qr, QR_SERIES);
	struct remote_series	*v = NULL;
	size_t			 len = 0, cap = 0;
	const char		*kind;
	int			 rc;

	sqlite3_bind_int64(s, 1, run_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			v = xreallocarray(v, cap, sizeof *v);
		}
		v[len].id = sqlite3_column_int64(s, 0);
		kind = (const char *)sqlite3_column_text(s, 1);
		v[len].kind = kind != NULL ? series_kind_parse(kind) : -1;
		v[len].name = query_remote_text(s, 2);
		if (v[len].name == NULL)
			v[len].name = xstrdup("");
		len++;
	}
	if (rc != SQLITE_DONE) {
		remote_series_free(v, len);
		return query_remote_err(qr, cause, "series");
	}
	sqlite3_reset(s);
	*out = v;
	*n = len;
	return 0;
}

int
query_remote_series_count(struct query_remote *qr, int64_t run_id,
    int64_t *n, int64_t *max_id, char **cause)
{
	sqlite3_stmt	*s = query_remote_stmt(qr, QR_NSERIES);

	sqlite3_bind_int64(s, 1, run_id);
	if (sqlite3_step(s) != SQLITE_ROW)
		return query_remote_err(qr, cause, "series count");
	*n = sqlite3_column_int64(s, 0);
	*max_id = sqlite3_column_int64(s, 1);
	sqlite3_reset(s);
	return 0;
}

int
query_remote_last(struct query_remote *qr, int64_t *id, char **cause)
{
	sqlite3_stmt	*s = query_remote_stmt(qr, QR_LAST);

	if (sqlite3_step(s) != SQLITE_ROW)
		return query_remote_err(qr, cause, "last log row");
	*id = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return 0;
}

void
remote_series_free(struct remote_series *s, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		free(s[i].name);
	free(s);
}

void
remote_points_reserve(struct remote_points *p, size_t more)
{
	size_t	cap = p->cap == 0 ? 256 : p->cap;

	if (p->n + more <= p->cap)
		return;
	while (cap < p->n + more)
		cap *= 2;
	p->steps = xreallocarray(p->steps, cap, sizeof *p->steps);
	p->vals = xreallocarray(p->vals, cap, sizeof *p->vals);
	p->cap = cap;
}

/* Decode blob into *steps, *vals (grown to *cap): its count, or -1. */
static int
query_remote_decode(const void *blob, size_t len, int64_t **steps,
    double **vals, size_t *cap, size_t *n, char **cause)
{
	struct chunk_info	info;

	if (chunk_info(blob, len, &info, cause) == -1)
		return -1;
	if (info.n > *cap) {
		*steps = xreallocarray(*steps, info.n, sizeof **steps);
		*vals = xreallocarray(*vals, info.n, sizeof **vals);
		*cap = info.n;
	}
	return chunk_decode(blob, len, *steps, *vals, *cap, n, cause);
}

/*
 * The points of the row s stands on (series series_id): a tail's
 * decoded apart; a chunk's from the cache, or read (its blob only then:
 * s does not carry it) and decoded into it.
 */
static int
query_remote_row(struct query_remote *qr, sqlite3_stmt *s, int64_t series_id,
    const int64_t **steps, const double **vals, size_t *n, char **cause)
{
	struct qr_chunk	*c;
	sqlite3_stmt	*b;
	const void	*blob;
	size_t		 len;
	int		 rc;

	if (sqlite3_column_int(s, 0) == 0) {
		blob = sqlite3_column_blob(s, 5);
		len = (size_t)sqlite3_column_bytes(s, 5);
		if (query_remote_decode(blob, len, &qr->dsteps, &qr->dvals,
		    &qr->dcap, n, cause) == -1)
			return -1;
		*steps = qr->dsteps;
		*vals = qr->dvals;
		return 0;
	}
	if (qr->cache == NULL)
		qr->cache = xcalloc(QR_CACHE_SLOTS, sizeof *qr->cache);
	c = &qr->cache[(uint64_t)series_id % QR_CACHE_SLOTS];
	if (c->series_id != series_id || c->id != sqlite3_column_int64(s, 1) ||
	    c->first != sqlite3_column_int64(s, 2) ||
	    c->last != sqlite3_column_int64(s, 3) ||
	    c->n != sqlite3_column_int64(s, 4)) {
		c->series_id = 0;
		b = query_remote_stmt(qr, QR_CHUNK);
		sqlite3_bind_int64(b, 1, sqlite3_column_int64(s, 1));
		if ((rc = sqlite3_step(b)) != SQLITE_ROW) {
			if (rc == SQLITE_DONE)
				xasprintf(cause, "query_remote: chunk %lld is gone",
				    (long long)sqlite3_column_int64(s, 1));
			else
				query_remote_err(qr, cause, "chunk");
			sqlite3_reset(b);
			return -1;
		}
		blob = sqlite3_column_blob(b, 0);
		len = (size_t)sqlite3_column_bytes(b, 0);
		rc = query_remote_decode(blob, len, &c->steps, &c->vals,
		    &c->cap, n, cause);
		sqlite3_reset(b);
		if (rc == -1)
			return -1;
		c->series_id = series_id;
		c->id = sqlite3_column_int64(s, 1);
		c->first = sqlite3_column_int64(s, 2);
		c->last = sqlite3_column_int64(s, 3);
		c->n = (int64_t)*n;
	}
	*steps = c->steps;
	*vals = c->vals;
	*n = (size_t)c->n;
	return 0;
}

/* Append the points of steps[0..n-1] in [lo, hi] to p. */
static void
query_remote_keep(struct remote_points *p, const int64_t *steps,
    const double *vals, size_t n, int64_t lo, int64_t hi)
{
	size_t	i;

	remote_points_reserve(p, n);
	for (i = 0; i < n; i++)
		if (steps[i] >= lo && steps[i] <= hi) {
			p->steps[p->n] = steps[i];
			p->vals[p->n++] = vals[i];
		}
}

static int
query_remote_step_cmp(const void *a, const void *b)
{
	int64_t	x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

int
query_remote_points(struct query_remote *qr, int64_t series_id, int64_t lo,
    int64_t hi, struct remote_points *p, char **cause)
{
	sqlite3_stmt	*s = query_remote_stmt(qr, QR_POINTS);
	const int64_t	*rsteps;
	const double	*rvals;
	int64_t		*idx;
	double		*v;
	size_t		 i, n;
	int		 rc, sorted = 1;

	p->n = 0;
	sqlite3_bind_int64(s, 1, series_id);
	sqlite3_bind_int64(s, 2, lo);
	sqlite3_bind_int64(s, 3, hi);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (query_remote_row(qr, s, series_id, &rsteps, &rvals, &n,
		    cause) == -1) {
			sqlite3_reset(s);
			return -1;
		}
		query_remote_keep(p, rsteps, rvals, n, lo, hi);
	}
	if (rc != SQLITE_DONE)
		return query_remote_err(qr, cause, "points");
	sqlite3_reset(s);
	for (i = 1; i < p->n && sorted; i++)
		sorted = p->steps[i - 1] < p->steps[i];
	if (sorted)
		return 0;
	/* Rows met out of order: sort pairs (step, index) and permute. */
	idx = xreallocarray(NULL, p->n * 2, sizeof *idx);
	v = xreallocarray(NULL, p->n, sizeof *v);
	for (i = 0; i < p->n; i++) {
		idx[2 * i] = p->steps[i];
		idx[2 * i + 1] = (int64_t)i;
	}
	qsort(idx, p->n, 2 * sizeof *idx, query_remote_step_cmp);
	for (i = 0; i < p->n; i++) {
		p->steps[i] = idx[2 * i];
		v[i] = p->vals[idx[2 * i + 1]];
	}
	memcpy(p->vals, v, p->n * sizeof *v);
	free(idx);
	free(v);
	return 0;
}

void
remote_points_cleanup(struct remote_points *p)
{
	free(p->steps);
	free(p->vals);
	memset(p, 0, sizeof *p);
}

int
query_remote_backlog(struct query_remote *qr, int64_t after, int64_t *rows,
    int64_t *steps, char **cause)
{
	sqlite3_stmt	*s = query_remote_stmt(qr, QR_BACKLOG);

	sqlite3_bind_int64(s, 1, after);
	if (sqlite3_step(s) != SQLITE_ROW)
		return query_remote_err(qr, cause, "backlog");
	*rows = sqlite3_column_int64(s, 0);
	*steps = (int64_t)sqlite3_column_double(s, 1);
	sqlite3_reset(s);
	return 0;
}
