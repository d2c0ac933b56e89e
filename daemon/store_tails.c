/* SPDX-License-Identifier: MIT */
/*
 * store_tails: the open tail of each series (schema/0003).  A commit
 * appends a series' new points as one row at the end of the tails
 * table, so that it writes pages in proportion to its points however
 * long the run is; no row is ever rewritten on this path.  Points that
 * arrive late but fall inside the tail join it (store_tail_insert).
 * The tail's points are also kept in the series' cache entry, so that
 * sealing them, once they fill a chunk row (a page: store_int.h),
 * reads nothing: the chunk row is inserted and the series' tail rows
 * deleted, in the commit that filled it.  A round after that commit
 * seals every other tail past half a row as half rows
 * (store_tails_seal_round), because a series' tail rows lie one to a
 * page among the others': series sealed together free whole pages,
 * where sealed one by one they rewrite each page many times.  After a
 * restart (or once the cache was emptied) a series' tail rows are read
 * back on its next append.  The points held in memory are bounded:
 * past STORE_TAIL_POINTS_MAX, a round seals the biggest tails first.
 * Writer thread only.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "chunk.h"
#include "log.h"
#include "store.h"
#include "store_int.h"
#include "xmalloc.h"

/* Room for n more points after e's tail. */
static void
store_tail_reserve(struct store_ent *e, size_t n)
{
	size_t	cap;

	if (e->s.tn + n <= e->tcap)
		return;
	cap = e->tcap == 0 ? 64 : e->tcap;
	while (cap < e->s.tn + n)
		cap *= 2;
	e->tsteps = xreallocarray(e->tsteps, cap, sizeof *e->tsteps);
	e->tvals = xreallocarray(e->tvals, cap, sizeof *e->tvals);
	e->tcap = cap;
}

void
store_tail_free(struct store *st, struct store_ent *e)
{
	(void)st;
	free(e->tsteps);
	free(e->tvals);
	e->tsteps = NULL;
	e->tvals = NULL;
	e->tcap = 0;
}

/*
 * Only where no undo can need e's tail as it is (store_state): move the
 * live points to the front, or free the arrays when there are none.
 */
void
store_tail_compact(struct store *st, struct store_ent *e)
{
	size_t	live = e->s.tn - e->s.toff;

	if (live == 0) {
		if (e->tcap > 0)
			store_tail_free(st, e);
		e->s.toff = e->s.tflushed = e->s.tn = 0;
		return;
	}
	if (e->s.toff == 0)
		return;
	memmove(e->tsteps, e->tsteps + e->s.toff, live * sizeof *e->tsteps);
	memmove(e->tvals, e->tvals + e->s.toff, live * sizeof *e->tvals);
	e->s.tflushed -= e->s.toff;
	e->s.tn = live;
	e->s.toff = 0;
}

/* 1 if some step of a[0..na) (ascending) is in b[0..nb) (ascending). */
static int
steps_meet(const int64_t *a, size_t na, const int64_t *b, size_t nb)
{
	size_t	i = 0, j = 0;

	while (i < na && j < nb) {
		if (a[i] == b[j])
			return 1;
		if (a[i] < b[j])
			i++;
		else
			j++;
	}
	return 0;
}

/*
 * Merge the n points decoded after e's tail (at tn, ascending) into
 * [0, tn), in place from the back: 0, or -1 (nothing changed) when one
 * of them repeats a step there.
 */
static int
store_tail_merge_last(struct store_ent *e, size_t n)
{
	int64_t	*s = e->tsteps, *rs;
	double	*v = e->tvals, *rv;
	size_t	 i = e->s.tn, j = n, k = e->s.tn + n;

	if (steps_meet(s, e->s.tn, s + e->s.tn, n))
		return -1;
	/* The row's points move out of the way of the merged ones. */
	rs = xreallocarray(NULL, n, sizeof *rs);
	rv = xreallocarray(NULL, n, sizeof *rv);
	memcpy(rs, s + e->s.tn, n * sizeof *rs);
	memcpy(rv, v + e->s.tn, n * sizeof *rv);
	while (j > 0) {
		k--;
		if (i > 0 && s[i - 1] > rs[j - 1]) {
			i--;
			s[k] = s[i];
			v[k] = v[i];
		} else {
			j--;
			s[k] = rs[j];
			v[k] = rv[j];
		}
	}
	free(rs);
	free(rv);
	return 0;
}

/*
 * Read e's tail rows into memory (its tail is STORE_TAIL_UNKNOWN).  A
 * row that does not decode, or repeats a step of a row before it, goes
 * to quarantine.
 */
int
store_tail_load(struct store *st, struct store_ent *e, char **cause)
{
	sqlite3_stmt		*s = st->stmt[SID_TAIL_LOAD];
	struct chunk_info	 info;
	const void		*blob;
	char			*why;
	int64_t			 id, n;
	size_t			 got;
	int			 rc, len;

	e->s.toff = e->s.tflushed = e->s.tn = 0;
	e->s.trows = 0;
	e->s.tbytes = e->s.tshort = 0;
	sqlite3_bind_int64(s, 1, e->s.id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		why = NULL;
		id = sqlite3_column_int64(s, 0);
		n = sqlite3_column_int64(s, 1);
		blob = sqlite3_column_blob(s, 2);
		len = sqlite3_column_bytes(s, 2);
		if (blob == NULL || chunk_info(blob, (size_t)len, &info,
		    &why) == -1) {
			store_bad_add(st, id, n, why != NULL ? why :
			    xstrdup("no data"));
			continue;
		}
		if ((int64_t)info.n != n) {
			xasprintf(&why, "its data holds %zu points, its n "
			    "column says %" PRId64, info.n, n);
			store_bad_add(st, id, n, why);
			continue;
		}
		store_tail_reserve(e, info.n);
		if (chunk_decode(blob, (size_t)len, e->tsteps + e->s.tn,
		    e->tvals + e->s.tn, info.n, &got, &why) == -1) {
			store_bad_add(st, id, n, why);
			continue;
		}
		/* A row of late points (store_tail_insert) interleaves. */
		if (e->s.tn > 0 && info.first_step <= e->tsteps[e->s.tn - 1] &&
		    store_tail_merge_last(e, got) == -1) {
			xasprintf(&why, "its steps %" PRId64 "..%" PRId64
			    " repeat a step of an earlier row", info.first_step,
			    info.last_step);
			store_bad_add(st, id, n, why);
			continue;
		}
		e->s.tn += got;
		e->s.trows++;
		e->s.tbytes += (size_t)len;
	}
	if (rc != SQLITE_DONE) {
		store_err(st, cause, "read tail");
		sqlite3_reset(s);
		e->s.tn = 0;
		e->s.trows = 0;
		e->s.tbytes = 0;
		return -1;
	}
	sqlite3_reset(s);
	e->s.tflushed = e->s.tn;
	e->s.tail = STORE_TAIL_LOADED;
	st->tpoints += e->s.tn;
	return store_bad_quarantine(st, e, 1, cause);
}

/* Append points (ascending, after every stored step) to e's tail. */
void
store_tail_push(struct store *st, struct store_ent *e, const int64_t *steps,
    const double *vals, size_t n)
{
	store_tail_reserve(e, n);
	memcpy(e->tsteps + e->s.tn, steps, n * sizeof *steps);
	memcpy(e->tvals + e->s.tn, vals, n * sizeof *vals);
	e->s.tn += n;
	st->pending += n;
	st->tpoints += n;
}

/*
 * After the first points of e's live tail, up to end, went to chunk rows
 * and its tails rows were deleted: the points after them, written or
 * not, are left unwritten for the next store_tail_flush.  The caller
 * writes e's series row (its max_span may have grown).
 */
static void
store_tail_sealed(struct store *st, struct store_ent *e, size_t end)
{
	if (end > e->s.tflushed)
		st->pending -= end - e->s.tflushed;
	else
		st->pending += e->s.tflushed - end;
	st->tpoints -= end - e->s.toff;
	e->s.toff = e->s.tflushed = end;
	e->s.trows = 0;
	e->s.tbytes = 0;
	e->s.tshort = 0;
}

static int
store_tail_rows_delete(struct store *st, struct store_ent *e, char **cause)
{
	sqlite3_stmt	*s = st->stmt[SID_TAIL_DELETE];

	if (e->s.trows == 0)
		return 0;
	sqlite3_bind_int64(s, 1, e->s.id);
	return store_done(st, s, "delete tail", cause);
}

/* Seal e's whole tail, written or not, as chunk rows. */
int
store_tail_seal(struct store *st, struct store_ent *e, char **cause)
{
	size_t	n = e->s.tn - e->s.toff;

	if (e->s.tail != STORE_TAIL_LOADED || n == 0)
		return 0;
	if (store_tail_rows_delete(st, e, cause) == -1)
		return -1;
	st->ncand = 0;		/* no rows to reuse: all inserts */
	if (store_chunks_write(st, e, e->tsteps + e->s.toff,
	    e->tvals + e->s.toff, n, cause) == -1)
		return -1;
	store_tail_sealed(st, e, e->s.tn);
	return 0;
}

/*
 * Seal the first points of e's live tail as chunk rows of budget bytes
 * while they come out whole: the rest stays as the tail.  Sets *sealed
 * to the points sealed, and when none, e's tshort from what the tail
 * would take (est: its estimate from its rows).  What is left after a
 * row is not encoded again when, at that row's bytes a point, it would
 * take under 7/8 of a row: it is the tail (and should it fill a row
 * after all, the next flush or round seals it).
 */
static int
store_tail_seal_rows(struct store *st, struct store_ent *e, size_t budget,
    size_t est, size_t *sealed, char **cause)
{
	size_t	off = e->s.toff, live, k, len;

	*sealed = 0;
	while ((live = e->s.tn - off) > 0) {
		k = store_chunk_fit(st, e->tsteps + off, e->tvals + off, live,
		    budget);
		if (k == 0) {
			xasprintf(cause, "store: %zu points of series %s do "
			    "not make a chunk", live, e->name);
			return -1;
		}
		if (k == live && k < STORE_CHUNK_MAX)
			break;		/* not a whole row: the tail */
		len = st->enc.len;
		if (off == e->s.toff && store_tail_rows_delete(st, e,
		    cause) == -1)
			return -1;
		if (store_chunk_put(st, e, 0, e->tsteps + off, e->tvals + off,
		    k, cause) == -1)
			return -1;
		off += k;
		if (live - k < STORE_CHUNK_MAX &&
		    (live - k) * len < budget / 8 * 7 * k)
			break;
	}
	if (off > e->s.toff) {
		*sealed = off - e->s.toff;
		store_tail_sealed(st, e, off);
	} else
		e->s.tshort = est > st->enc.len ? est - st->enc.len : 0;
	return 0;
}

/* Encode points (ascending) of e into st->enc as a tails row. */
static int
store_tail_row_encode(struct store *st, struct store_ent *e,
    const int64_t *steps, const double *vals, size_t n, char **cause)
{
	st->enc.len = 0;
	if (chunk_encode(&st->enc, steps, vals, n) == 0) {
		xasprintf(cause, "store: %zu points of series %s do not make "
		    "a tail row", n, e->name);
		return -1;
	}
	return 0;
}

/* Write st->enc, the points steps[0..n-1] of e, as one more tails row. */
static int
store_tail_row_put(struct store *st, struct store_ent *e,
    const int64_t *steps, size_t n, char **cause)
{
	sqlite3_stmt	*s = st->stmt[SID_TAIL_INSERT];
	int64_t		 span;

	sqlite3_bind_int64(s, 1, e->s.id);
	sqlite3_bind_int64(s, 2, steps[0]);
	sqlite3_bind_int64(s, 3, steps[n - 1]);
	sqlite3_bind_int64(s, 4, (int64_t)n);
	sqlite3_bind_blob(s, 5, st->enc.data, (int)st->enc.len, SQLITE_STATIC);
	if (store_done(st, s, "insert tail", cause) == -1)
		return -1;
	span = steps[n - 1] - steps[0];
	if (span > e->s.maxspan)
		e->s.maxspan = span;
	e->s.trows++;
	e->s.tbytes += st->enc.len;
	return 0;
}

/* Merge a[0..na) and b[0..nb) (ascending, no step in both) into out. */
static void
merge_into(int64_t *os, double *ov, const int64_t *as, const double *av,
    size_t na, const int64_t *bs, const double *bv, size_t nb)
{
	size_t	i = 0, j = 0, k = 0;

	while (i < na || j < nb) {
		if (j == nb || (i < na && as[i] < bs[j])) {
			os[k] = as[i];
			ov[k++] = av[i++];
		} else {
			os[k] = bs[j];
			ov[k++] = bv[j++];
		}
	}
}

int
store_tail_insert(struct store *st, struct store_ent *e, const int64_t *ns,
    const double *nv, size_t nn, char **cause)
{
	size_t	off = e->s.toff, fl = e->s.tflushed, end = e->s.tn, na, k;

	if (e->s.tail != STORE_TAIL_LOADED || end == off ||
	    ns[0] <= e->tsteps[off] ||
	    steps_meet(e->tsteps + off, end - off, ns, nn))
		return 0;
	/*
	 * The points before the first unwritten one go to a row of their
	 * own now, the rest join the unwritten points: written rows are
	 * never rewritten.
	 */
	na = 0;
	if (fl > off)
		while (na < nn && (fl == end || ns[na] < e->tsteps[fl]))
			na++;
	if (na > 0 && (store_tail_row_encode(st, e, ns, nv, na, cause) == -1 ||
	    store_tail_row_put(st, e, ns, na, cause) == -1))
		return -1;
	/* Build the merged tail after the old one, which an undo may need. */
	store_tail_reserve(e, end - off + nn);
	k = end;
	merge_into(e->tsteps + k, e->tvals + k, e->tsteps + off,
	    e->tvals + off, fl - off, ns, nv, na);
	k += fl - off + na;
	merge_into(e->tsteps + k, e->tvals + k, e->tsteps + fl, e->tvals + fl,
	    end - fl, ns + na, nv + na, nn - na);
	e->s.toff = end;
	e->s.tflushed = k;
	e->s.tn = k + (end - fl) + (nn - na);
	st->pending += nn - na;
	st->tpoints += nn;
	return 1;
}

/*
 * Write e's unwritten tail points as one tails row; once the tail holds
 * a whole chunk row (by its rows' bytes, or STORE_CHUNK_MAX points), its
 * whole rows are sealed first and only the rest is written as a row.
 */
int
store_tail_flush(struct store *st, struct store_ent *e, char **cause)
{
	size_t	n = e->s.tn - e->s.tflushed, est, sealed;

	if (e->s.tail != STORE_TAIL_LOADED || n == 0)
		return 0;
	if (store_tail_row_encode(st, e, e->tsteps + e->s.tflushed,
	    e->tvals + e->s.tflushed, n, cause) == -1)
		return -1;
	est = e->s.tbytes + st->enc.len;
	if (est >= st->chunk_bytes + e->s.tshort ||
	    e->s.tn - e->s.toff >= STORE_CHUNK_MAX) {
		if (store_tail_seal_rows(st, e, st->chunk_bytes, est,
		    &sealed, cause) == -1)
			return -1;
		if (sealed > 0)
			st->sealed_now = 1;
		if ((n = e->s.tn - e->s.tflushed) == 0)
			return 0;
		if (store_tail_row_encode(st, e, e->tsteps + e->s.tflushed,
		    e->tvals + e->s.tflushed, n, cause) == -1)
			return -1;
	}
	if (store_tail_row_put(st, e, e->tsteps + e->s.tflushed, n,
	    cause) == -1)
		return -1;
	st->pending -= n;
	e->s.tflushed = e->s.tn;
	return 0;
}

static int
store_tail_size_cmp(const void *a, const void *b)
{
	const struct store_ent	*x = *(struct store_ent *const *)a;
	const struct store_ent	*y = *(struct store_ent *const *)b;
	size_t			 nx = x->s.tn - x->s.toff;
	size_t			 ny = y->s.tn - y->s.toff;

	return (nx < ny) - (nx > ny);	/* biggest first */
}

/*
 * After store_commit's COMMIT, in a transaction of its own, so that a
 * seal that fails (its series was deleted behind our back) never fails
 * the requests just committed, and with no savepoint per series (each
 * would copy every page it touches to a statement journal).  When the
 * tails hold more than st->tpoints_max points in memory, seal the
 * biggest until they hold three quarters of it: their whole half rows
 * (st->chunk_half), or all of a tail that has none; else, after a
 * commit that sealed a tail (store_tail_flush), seal the whole half
 * rows of every tail that has one.  On a failure the round is rolled back and -1
 * returned: the caller empties the cache, so the tails are read again
 * from their rows when next used.
 */
int
store_tails_seal_round(struct store *st)
{
	struct store_ent	**v, *e;
	size_t			  n = 0, i, live, sealed;
	char			 *cause = NULL;
	int			  trim;

	trim = st->tpoints > st->tpoints_max;
	if (!trim && !st->sealed_now)
		return 0;
	st->sealed_now = 0;
	v = xreallocarray(NULL, st->tabcount, sizeof *v);
	for (i = 0; i < st->tabsize; i++) {
		e = st->tab[i];
		if (e == NULL || e->s.stale || e->s.tail != STORE_TAIL_LOADED)
			continue;
		live = e->s.tn - e->s.toff;
		if (live > 0 && (trim ||
		    e->s.tbytes >= st->chunk_half + e->s.tshort))
			v[n++] = e;
	}
	if (n == 0)
		goto out;
	if (trim)
		qsort(v, n, sizeof *v, store_tail_size_cmp);
	if (store_done(st, st->stmt[SID_BEGIN], "begin", &cause) == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		if (trim && st->tpoints <= st->tpoints_max / 4 * 3)
			break;
		/* Half rows where there are some (the memory bound too). */
		if (store_tail_seal_rows(st, v[i], st->chunk_half,
		    v[i]->s.tbytes, &sealed, &cause) == -1 ||
		    (trim && sealed == 0 && store_tail_seal(st, v[i],
		    &cause) == -1) ||
		    store_tail_flush(st, v[i], &cause) == -1)
			goto fail;
		if (store_series_row_write(st, v[i], &cause) == -1)
			goto fail;
		store_tail_compact(st, v[i]);
	}
	if (store_done(st, st->stmt[SID_COMMIT], "commit", &cause) == -1)
		goto fail;
out:
	free(v);
	return 0;

fail:
	log_warnx("store: sealing %zu tails failed, left as they were: %s",
	    n, cause);
	free(cause);
	if (!sqlite3_get_autocommit(st->db))
		store_done_quiet(st, st->stmt[SID_ROLLBACK]);
	free(v);
	return -1;
}
