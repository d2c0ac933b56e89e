/* SPDX-License-Identifier: MIT */
/*
 * store_series: the store's cache and a batch's points.  The cache maps
 * run keys and (run, kind, name) to ids, counters and the open tail
 * (store_tails.c), so that an append needs no query.  A batch's points
 * that all follow a series' last step are appended to its tail; others
 * (a step sent again, or older than the last) go through the rare
 * path: the tail is sealed first if the points reach into it, then
 * every chunk whose range meets them is read, merged with them (the new
 * value winning) and written back over the same rows, so that no step
 * is ever stored twice.  Writer thread only.
 */
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "batch.h"
#include "chunk.h"
#include "log.h"
#include "store.h"
#include "store_int.h"
#include "store_rowjson.h"
#include "wire.h"
#include "xmalloc.h"

/* ---- the cache ---------------------------------------------------- */

static uint64_t
store_hash(int64_t run_id, int kind, const char *name)
{
	uint64_t		 h = 0xcbf29ce484222325ULL;
	const unsigned char	*p;

	h ^= (uint64_t)run_id * 0x9e3779b97f4a7c15ULL;
	h ^= (uint64_t)(kind + 1) << 48;
	for (p = (const unsigned char *)name; *p != '\0'; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return h ^ (h >> 31);
}

/* Forget everything cached, the tails' points in memory included. */
void
store_cache_clear(struct store *st)
{
	size_t	i;

	for (i = 0; i < st->tabsize; i++) {
		if (st->tab[i] != NULL) {
			store_tail_free(st, st->tab[i]);
			free(st->tab[i]->name);
			free(st->tab[i]);
			st->tab[i] = NULL;
		}
	}
	st->tabcount = 0;
	st->nundo = 0;
	st->ndirty = 0;
	st->pending = 0;
	st->tpoints = 0;
}

static int
store_id_cmp(const void *a, const void *b)
{
	int64_t	x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

void
store_cache_evict(struct store *st, const int64_t *run_ids, size_t n)
{
	struct store_ent	**old = st->tab, *e;
	int64_t			 *ids, id;
	size_t			  i, j;

	assert(st->ndirty == 0 && st->nundo == 0);
	if (n == 0 || st->tabcount == 0)
		return;
	ids = xreallocarray(NULL, n, sizeof *ids);
	memcpy(ids, run_ids, n * sizeof *ids);
	qsort(ids, n, sizeof *ids, store_id_cmp);
	/* Linear probing: the survivors go into a new table. */
	st->tab = xcalloc(st->tabsize, sizeof *st->tab);
	st->tabcount = 0;
	for (i = 0; i < st->tabsize; i++) {
		if ((e = old[i]) == NULL)
			continue;
		id = e->kind == -1 ? e->s.id : e->run_id;	/* a run's own */
		if (bsearch(&id, ids, n, sizeof *ids, store_id_cmp) != NULL) {
			st->tpoints -= e->s.tn - e->s.toff;
			store_tail_free(st, e);
			free(e->name);
			free(e);
			continue;
		}
		for (j = e->hash & (st->tabsize - 1); st->tab[j] != NULL;
		    j = (j + 1) & (st->tabsize - 1))
			;
		st->tab[j] = e;
		st->tabcount++;
	}
	free(old);
	free(ids);
}

void
store_cache_stats(struct store *st, size_t *entries, size_t *tail_points)
{
	*entries = st->tabcount;
	*tail_points = st->tpoints;
}

static void
store_cache_grow(struct store *st)
{
	struct store_ent	**old = st->tab;
	size_t			  oldsize = st->tabsize, i, j;

	st->tabsize = oldsize == 0 ? 1024 : oldsize * 2;
	st->tab = xcalloc(st->tabsize, sizeof *st->tab);
	for (i = 0; i < oldsize; i++) {
		if (old[i] == NULL)
			continue;
		j = old[i]->hash & (st->tabsize - 1);
		while (st->tab[j] != NULL)
			j = (j + 1) & (st->tabsize - 1);
		st->tab[j] = old[i];
	}
	free(old);
}

/* The slot of (run_id, kind, name): its entry, or the empty slot for it. */
static size_t
store_cache_slot(struct store *st, int64_t run_id, int kind,
    const char *name, uint64_t h)
{
	struct store_ent	*e;
	size_t			 i;

	i = h & (st->tabsize - 1);
	while ((e = st->tab[i]) != NULL) {
		if (e->hash == h && e->run_id == run_id && e->kind == kind &&
		    strcmp(e->name, name) == 0)
			break;
		i = (i + 1) & (st->tabsize - 1);
	}
	return i;
}

/* The entry of (run_id, kind, name), or NULL; changes nothing. */
struct store_ent *
store_cache_find(struct store *st, int64_t run_id, int kind,
    const char *name)
{
	if (st->tabsize == 0)
		return NULL;
	return st->tab[store_cache_slot(st, run_id, kind, name,
	    store_hash(run_id, kind, name))];
}

/*
 * Record e's state before the current batch changes it.  No undo needs
 * e's old tail layout before this, so its tail is compacted first.
 */
static void
store_touch(struct store *st, struct store_ent *e)
{
	if (e->gen == st->gen)
		return;
	e->gen = st->gen;
	store_tail_compact(st, e);
	if (st->nundo == st->undocap) {
		st->undocap = st->undocap == 0 ? 64 : st->undocap * 2;
		st->undo = xreallocarray(st->undo, st->undocap,
		    sizeof *st->undo);
	}
	st->undo[st->nundo].e = e;
	st->undo[st->nundo].saved = e->s;
	st->nundo++;
}

/* The entry of (run_id, kind, name), created stale, and touched. */
struct store_ent *
store_cache_get(struct store *st, int64_t run_id, int kind, const char *name)
{
	struct store_ent	*e;
	uint64_t		 h;
	size_t			 i;

	if (st->tabcount + 1 > st->tabsize / 2)
		store_cache_grow(st);
	h = store_hash(run_id, kind, name);
	i = store_cache_slot(st, run_id, kind, name, h);
	if ((e = st->tab[i]) == NULL) {
		e = xcalloc(1, sizeof *e);
		e->name = xstrdup(name);
		e->run_id = run_id;
		e->kind = kind;
		e->hash = h;
		e->s.stale = 1;
		st->tab[i] = e;
		st->tabcount++;
	}
	store_touch(st, e);
	return e;
}

/* ---- series rows ------------------------------------------------------ */

/* The touched cache entry of series (run_id, kind, name), created if needed. */
static struct store_ent *
store_series_get(struct store *st, int64_t run_id, enum series_kind kind,
    const char *name, char **cause)
{
	struct store_ent	*e;
	sqlite3_stmt		*s;
	const char		*kname = series_kind_name(kind);
	int			 rc;

	e = store_cache_get(st, run_id, (int)kind, name);
	if (!e->s.stale)
		return e;

	s = st->stmt[SID_SERIES_GET];
	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_text(s, 2, kname, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	memset(&e->s, 0, sizeof e->s);
	if (rc == SQLITE_ROW) {
		e->s.id = sqlite3_column_int64(s, 0);
		e->s.points = sqlite3_column_int64(s, 1);
		e->s.last_step = sqlite3_column_int64(s, 2);
		e->s.last_value = e->s.points > 0 ?
		    store_rowjson_value(s, 3, 4) : 0;
		e->s.maxspan = sqlite3_column_int64(s, 5);
		/* Its tail rows are read on its next append. */
		e->s.tail = e->s.points > 0 ? STORE_TAIL_UNKNOWN :
		    STORE_TAIL_LOADED;
		sqlite3_reset(s);
	} else if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		s = st->stmt[SID_SERIES_INSERT];
		sqlite3_bind_int64(s, 1, run_id);
		sqlite3_bind_text(s, 2, kname, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
		if (store_done(st, s, "insert series", cause) == -1) {
			e->s.stale = 1;
			return NULL;
		}
		e->s.id = sqlite3_last_insert_rowid(st->db);
		e->s.tail = STORE_TAIL_LOADED;
	} else {
		store_err(st, cause, "read series");
		sqlite3_reset(s);
		e->s.stale = 1;
		return NULL;
	}
	return e;
}

int
store_layer_meta(struct store *st, int64_t run_id,
    const struct batch_layer_meta *lm, char **cause)
{
	struct store_ent	*e;
	sqlite3_stmt		*s;

	if ((e = store_series_get(st, run_id, SERIES_LAYER_GRAD, lm->name,
	    cause)) == NULL)
		return -1;
	s = st->stmt[SID_SERIES_META];
	sqlite3_bind_int64(s, 1, e->s.id);
	if (lm->numel >= 0)
		sqlite3_bind_int64(s, 2, lm->numel);
	else
		sqlite3_bind_null(s, 2);
	if (lm->depth >= 0)
		sqlite3_bind_int64(s, 3, lm->depth);
	else
		sqlite3_bind_null(s, 3);
	if (lm->shape_json != NULL)
		sqlite3_bind_text(s, 4, lm->shape_json, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 4);
	return store_done(st, s, "layer metadata", cause);
}

/* ---- flushing --------------------------------------------------------- */

/* Write e's unwritten tail points and its series row. */
static int
store_flush_write(struct store *st, struct store_ent *e, char **cause)
{
	if (e->s.stale || !e->s.dirty)
		return 0;
	if (store_tail_flush(st, e, cause) == -1)
		return -1;
	return store_series_row_write(st, e, cause);
}

/*
 * Flush e in a savepoint of its own: on failure the database and e are
 * as they were, unwritten points included.
 */
static int
store_flush_atomic(struct store *st, struct store_ent *e, char **cause)
{
	struct store_state	saved;
	size_t			pending = st->pending, tpoints = st->tpoints;

	store_tail_compact(st, e);
	saved = e->s;
	if (store_done(st, st->stmt[SID_FLUSH_SAVEPOINT], "savepoint",
	    cause) == -1)
		return -1;
	if (store_flush_write(st, e, cause) == -1 ||
	    store_done(st, st->stmt[SID_FLUSH_RELEASE], "release",
	    cause) == -1) {
		store_done_quiet(st, st->stmt[SID_FLUSH_ROLLBACK_TO]);
		store_done_quiet(st, st->stmt[SID_FLUSH_RELEASE]);
		e->s = saved;
		st->pending = pending;
		st->tpoints = tpoints;
		return -1;
	}
	e->s.dirty = 0;
	store_tail_compact(st, e);
	return 0;
}

/*
 * Flush every queued entry.  atomic: each in its own savepoint (in
 * mid-transaction); else a failure leaves the transaction to be rolled
 * back and the cache cleared (store_commit).
 */
int
store_flush_all(struct store *st, int atomic, char **cause)
{
	struct store_ent	*e;
	size_t			 i;

	for (i = 0; i < st->ndirty; i++) {
		e = st->dirty[i];
		if (atomic) {
			if (store_flush_atomic(st, e, cause) == -1)
				return -1;
		} else {
			if (store_flush_write(st, e, cause) == -1)
				return -1;
			e->s.dirty = 0;
			store_tail_compact(st, e);
		}
	}
	for (i = 0; i < st->ndirty; i++)
		st->dirty[i]->queued = 0;
	st->ndirty = 0;
	return 0;
}

/* ---- points in chunks ------------------------------------------------- */

/*
 * The rare path: points (ascending, unique) of series e of which the
 * first is not after its last step.  The tail is sealed first when they
 * reach into it; then the chunks they meet are merged with them and
 * rewritten.  *added is the number of steps that were not stored
 * before.
 */
static int
store_points_rewrite(struct store *st, struct store_ent *e,
    const int64_t *ns, const double *nv, size_t nn, int64_t *added,
    char **cause)
{
	sqlite3_stmt	*s;
	const int64_t	*ws, *os;
	const double	*wv, *ov;
	size_t		 wn, on;

	if (e->s.tail == STORE_TAIL_UNKNOWN &&
	    store_tail_load(st, e, cause) == -1)
		return -1;
	if (e->s.tn > e->s.toff && ns[nn - 1] >= e->tsteps[e->s.toff] &&
	    store_tail_seal(st, e, cause) == -1)
		return -1;

	st->old.n = 0;
	st->ncand = 0;
	s = st->stmt[SID_CHUNK_OVERLAP];
	sqlite3_bind_int64(s, 1, e->s.id);
	sqlite3_bind_int64(s, 2, ns[nn - 1]);
	sqlite3_bind_int64(s, 3, ns[0]);
	sqlite3_bind_int64(s, 4, e->s.maxspan);
	if (store_chunks_read(st, s, cause) == -1 ||
	    store_bad_quarantine(st, e, 0, cause) == -1)
		return -1;
	if (st->old.n == 0) {
		ws = ns;
		wv = nv;
		wn = nn;
	} else {
		/* Chunks interleave, so their concatenation may be unsorted. */
		store_normalize(st, st->old.steps, st->old.vals, st->old.n,
		    &st->oldsorted, &os, &ov, &on);
		store_merge(st, os, ov, on, ns, nv, nn);
		ws = st->merged.steps;
		wv = st->merged.vals;
		wn = st->merged.n;
	}
	if (store_chunks_write(st, e, ws, wv, wn, cause) == -1)
		return -1;
	*added = (int64_t)wn - (int64_t)st->old.n;
	return 0;
}

/* Store one series of a batch: append to its tail, or rewrite chunks. */
int
store_series_apply(struct store *st, int64_t run_id,
    const struct batch_series *bs, char **cause)
{
	struct store_ent	*e;
	const int64_t		*ns;
	const double		*nv;
	size_t			 nn;
	int64_t			 added;

	if (bs->n == 0)
		return 0;
	if ((e = store_series_get(st, run_id, bs->kind, bs->name,
	    cause)) == NULL)
		return -1;
	store_normalize(st, bs->steps, bs->values, bs->n, &st->sorted,
	    &ns, &nv, &nn);
	if (ns != bs->steps)
		st->plain = 0;	/* b's own order is not the stored one */

	if (e->s.points == 0 || ns[0] > e->s.last_step) {
		if (e->s.tail == STORE_TAIL_UNKNOWN &&
		    store_tail_load(st, e, cause) == -1)
			return -1;
		store_tail_push(st, e, ns, nv, nn);
		e->s.points += (int64_t)nn;
		st->added += (int64_t)nn;
		e->s.last_step = ns[nn - 1];
		e->s.last_value = nv[nn - 1];
		store_queue(st, e);
		return 0;
	}
	st->plain = 0;
	if (e->s.tail == STORE_TAIL_UNKNOWN &&
	    store_tail_load(st, e, cause) == -1)
		return -1;
	/* Late points inside the tail join it; others rewrite chunks. */
	switch (store_tail_insert(st, e, ns, nv, nn, cause)) {
	case -1:
		return -1;
	case 1:
		added = (int64_t)nn;
		break;
	default:
		if (store_points_rewrite(st, e, ns, nv, nn, &added,
		    cause) == -1)
			return -1;
	}
	e->s.points += added;
	st->added += added;
	if (ns[nn - 1] >= e->s.last_step) {
		e->s.last_step = ns[nn - 1];
		e->s.last_value = nv[nn - 1];
	}
	store_queue(st, e);
	return 0;
}
