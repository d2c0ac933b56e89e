/* SPDX-License-Identifier: MIT */
/*
 * store: opening and closing the writer's connection, its statement
 * tables, the WAL hooks the checkpoint thread needs, transactions, runs
 * and a batch as a whole.  A batch's points go through store_series.c
 * (the cache, chunks) and store_tails.c (the open tails); see
 * store_int.h for how the files share the work.  Writer thread only.
 */
#include <math.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "batch.h"
#include "store.h"
#include "store_int.h"
#include "xmalloc.h"

#define STORE_BUSY_MS		5000

/* Both run statements take ?2..?8 alike; ?1 is the key or the id. */
#define STORE_RUN_SET							\
	"project = coalesce(?2, project), config = coalesce(?3, config), " \
	"meta = coalesce(?4, meta), "					\
	"first_step = min(coalesce(first_step, ?5), "			\
	"coalesce(?5, first_step)), "					\
	"last_step = max(coalesce(last_step, ?6), coalesce(?6, last_step)), " \
	"last_seen = ?7, dropped = dropped + ?8"

/* Rows moved to quarantine keep their columns; ?1 the id, ?2 the reason. */
#define STORE_QUARANTINE(table)						\
	"INSERT INTO quarantine (series_id, source, source_id, first_step, " \
	"last_step, n, data, reason, quarantined_at) "			\
	"SELECT series_id, '" table "', id, first_step, last_step, n, data, " \
	"?2, (julianday('now') - 2440587.5) * 86400.0 FROM " table	\
	" WHERE id = ?1"

const char *const store_sql[SID_COUNT] = {
	[SID_BEGIN] = "BEGIN IMMEDIATE",
	[SID_COMMIT] = "COMMIT",
	[SID_ROLLBACK] = "ROLLBACK",
	[SID_SAVEPOINT] = "SAVEPOINT store_apply",
	[SID_RELEASE] = "RELEASE store_apply",
	[SID_ROLLBACK_TO] = "ROLLBACK TO store_apply",
	[SID_FLUSH_SAVEPOINT] = "SAVEPOINT store_flush",
	[SID_FLUSH_RELEASE] = "RELEASE store_flush",
	[SID_FLUSH_ROLLBACK_TO] = "ROLLBACK TO store_flush",
	[SID_RUN_UPSERT] =
	    "INSERT INTO runs (key, project, config, meta, first_step, "
	    "last_step, started_at, last_seen, dropped) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8) "
	    "ON CONFLICT (key) DO UPDATE SET " STORE_RUN_SET
	    " RETURNING id, points, coalesce(last_step, -1)",
	[SID_RUN_UPDATE] = "UPDATE runs SET " STORE_RUN_SET " WHERE id = ?1",
	[SID_RUN_POINTS] = "UPDATE runs SET points = points + ?2 WHERE id = ?1",
	[SID_RUN_FINISH] =
	    "UPDATE runs SET status = ?2, last_seen = ?3 WHERE key = ?1 "
	    "RETURNING id",
	/* NULL leaves a column as it is (store_annotate_run). */
	[SID_RUN_ANNOTATE] =
	    "UPDATE runs SET tags = coalesce(?2, tags), "
	    "note = coalesce(?3, note) WHERE key = ?1 RETURNING id",
	[SID_SERIES_GET] =
	    "SELECT id, points, last_step, last_value, last_class, max_span "
	    "FROM series WHERE run_id = ?1 AND kind = ?2 AND name = ?3",
	[SID_SERIES_INSERT] =
	    "INSERT INTO series (run_id, kind, name) VALUES (?1, ?2, ?3)",
	[SID_SERIES_UPDATE] =
	    "UPDATE series SET points = ?2, last_step = ?3, last_value = ?4, "
	    "last_class = ?5, max_span = ?6 WHERE id = ?1",
	[SID_SERIES_META] =
	    "UPDATE series SET numel = coalesce(?2, numel), "
	    "depth = coalesce(?3, depth), shape = coalesce(?4, shape) "
	    "WHERE id = ?1",
	/*
	 * Chunks meeting steps [?3, ?2].  None spans more than ?4 steps
	 * (series.max_span), so the index range starts at ?3 - ?4, not at
	 * the series' start.
	 */
	[SID_CHUNK_OVERLAP] =
	    "SELECT id, n, data, first_step, last_step FROM chunks "
	    "WHERE series_id = ?1 "
	    "AND first_step >= ?3 - ?4 AND first_step <= ?2 "
	    "AND last_step >= ?3 ORDER BY first_step",
	/*
	 * Insert and update bind ?2..?10 alike (store_chunk_bind).  Block
	 * summaries go to chunk_blocks (schema 0007); chunks.blocks, 0006's
	 * place for them, is cleared by a rewrite so that it never outlives
	 * the points it summarised.
	 */
	[SID_CHUNK_INSERT] =
	    "INSERT INTO chunks (series_id, first_step, last_step, n, data, "
	    "min_value, min_step, max_value, max_step, nonfinite) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[SID_CHUNK_UPDATE] =
	    "UPDATE chunks SET first_step = ?2, last_step = ?3, n = ?4, "
	    "data = ?5, min_value = ?6, min_step = ?7, max_value = ?8, "
	    "max_step = ?9, nonfinite = ?10, blocks = NULL WHERE id = ?1",
	[SID_CHUNK_DELETE] = "DELETE FROM chunks WHERE id = ?1",
	[SID_BLOCKS_PUT] =
	    "INSERT OR REPLACE INTO chunk_blocks (chunk_id, last_step, blocks) "
	    "VALUES (?1, ?2, ?3)",
	[SID_BLOCKS_DROP] = "DELETE FROM chunk_blocks WHERE chunk_id = ?1",
	[SID_TAIL_LOAD] =
	    "SELECT id, n, data FROM tails WHERE series_id = ?1 "
	    "ORDER BY first_step",
	[SID_TAIL_INSERT] =
	    "INSERT INTO tails (series_id, first_step, last_step, n, data) "
	    "VALUES (?1, ?2, ?3, ?4, ?5)",
	[SID_TAIL_DELETE] = "DELETE FROM tails WHERE series_id = ?1",
	[SID_QUARANTINE_CHUNK] = STORE_QUARANTINE("chunks"),
	[SID_QUARANTINE_TAIL] = STORE_QUARANTINE("tails"),
	[SID_DELETE_TAIL_ROW] = "DELETE FROM tails WHERE id = ?1",
};

static void
store_finalize_all(sqlite3_stmt **stmt, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		sqlite3_finalize(stmt[i]);
		stmt[i] = NULL;
	}
}

/* ---- open, close ------------------------------------------------------ */

static int
store_journal_cb(void *arg, int ncol, char **vals, char **names)
{
	char	*mode = arg;

	(void)names;
	if (ncol > 0 && vals[0] != NULL)
		snprintf(mode, 16, "%s", vals[0]);
	return 0;
}

/* Chunk rows are sized to the file's pages (store_int.h). */
static int
store_chunk_sizes(struct store *st, char **cause)
{
	sqlite3_stmt	*s;
	int64_t		 page = 0;

	if (sqlite3_prepare_v2(st->db, "PRAGMA page_size", -1, &s,
	    NULL) != SQLITE_OK) {
		store_err(st, cause, "page size");
		return -1;
	}
	if (sqlite3_step(s) == SQLITE_ROW)
		page = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (page < 512 || page > 65536) {
		xasprintf(cause, "store: page size %" PRId64 " unknown", page);
		return -1;
	}
	st->chunk_bytes = STORE_CHUNK_BYTES(page);
	st->chunk_half = STORE_CHUNK_HALF(page);
	return 0;
}

struct store *
store_open(const char *path, char **cause)
{
	struct store	*st;
	char		 mode[16] = "";
	char		*msg = NULL;

	st = xcalloc(1, sizeof *st);
	st->tpoints_max = STORE_TAIL_POINTS_MAX;
	chunk_buf_init(&st->enc);
	chunk_buf_init(&st->blocks);
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		xasprintf(cause, "%s: %s", path, st->db == NULL ?
		    "out of memory" : sqlite3_errmsg(st->db));
		goto fail;
	}
	sqlite3_busy_timeout(st->db, STORE_BUSY_MS);
	/*
	 * Before anything creates the file: 16 KiB pages cut the commit
	 * cost by about a third against 4 KiB (fewer WAL frames and
	 * overflow pages for chunk blobs).  No effect on an existing file.
	 */
	if (store_exec(st, "PRAGMA page_size = 16384", cause) == -1)
		goto fail;
	if (sqlite3_exec(st->db, "PRAGMA journal_mode = WAL",
	    store_journal_cb, mode, &msg) != SQLITE_OK) {
		xasprintf(cause, "%s: %s", path,
		    msg != NULL ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		goto fail;
	}
	/* Readers on other threads need WAL; an in-memory db has no file. */
	if (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0) {
		xasprintf(cause, "%s: cannot use WAL (journal mode %s)", path,
		    mode);
		goto fail;
	}
	/*
	 * synchronous=NORMAL: COMMIT writes the WAL without waiting for
	 * the disk; the writer answers a commit only after walsync has
	 * synced the WAL, the one sync FULL would add (walsync.h).
	 * A 64 MiB page cache keeps the b-tree pages that commits touch
	 * (the tails' end, the series rows, the indexes).  secure_delete:
	 * Debian's SQLite zeroes what is deleted, a WAL frame for every
	 * freed page; the rows deleted here are points moved into chunk
	 * rows, nothing that must be scrubbed.
	 */
	if (store_exec(st, "PRAGMA synchronous = NORMAL", cause) == -1 ||
	    store_exec(st, "PRAGMA cache_size = -65536", cause) == -1 ||
	    store_exec(st, "PRAGMA journal_size_limit = 67108864", cause) == -1 ||
	    store_exec(st, "PRAGMA foreign_keys = ON", cause) == -1 ||
	    store_exec(st, "PRAGMA secure_delete = OFF", cause) == -1 ||
	    store_chunk_sizes(st, cause) == -1)
		goto fail;
	if (store_migrate(st, path, cause) == -1)
		goto fail;
	/*
	 * Past the migrations the writer keeps the schema's references
	 * itself: it writes a row only under the series or run it has just
	 * found or made, and deletes no row with children but chunks, whose
	 * chunk_blocks row goes with it (store_chunk_delete).  Checking each
	 * tails, chunks and chunk_blocks insert against its parent took 5%
	 * of ingest's instructions.  Tests run PRAGMA foreign_key_check.
	 */
	if (store_exec(st, "PRAGMA foreign_keys = OFF", cause) == -1)
		goto fail;
	if (store_prepare_all(st, store_sql, st->stmt, SID_COUNT,
	    cause) == -1 ||
	    store_prepare_all(st, store_alerts_sql, st->alerts, AID_COUNT,
	    cause) == -1 ||
	    store_prepare_all(st, store_history_sql, st->history, HID_COUNT,
	    cause) == -1 ||
	    store_prepare_all(st, store_json_sql, st->json, JID_COUNT,
	    cause) == -1)
		goto fail;
	return st;

fail:
	store_close(st);
	return NULL;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	store_finalize_all(st->stmt, SID_COUNT);
	store_finalize_all(st->alerts, AID_COUNT);
	store_finalize_all(st->history, HID_COUNT);
	store_finalize_all(st->json, JID_COUNT);
	store_finalize_all(st->backfill, BID_COUNT);
	sqlite3_finalize(st->remote_log);
	sqlite3_close(st->db);
	store_cache_clear(st);
	free(st->tab);
	free(st->undo);
	free(st->dirty);
	free(st->keys);
	store_buf_free(&st->sorted);
	store_buf_free(&st->old);
	store_buf_free(&st->oldsorted);
	store_buf_free(&st->merged);
	free(st->cand);
	for (size_t i = 0; i < st->nbad; i++)
		free(st->bad[i].why);
	free(st->bad);
	chunk_buf_cleanup(&st->enc);
	chunk_buf_cleanup(&st->blocks);
	free(st);
}

const char *
store_wal_path(struct store *st)
{
	const char	*db;

	db = sqlite3_db_filename(st->db, "main");
	if (db == NULL || *db == '\0')
		return NULL;
	return sqlite3_filename_wal(db);
}

/* Inside COMMIT, writer thread: pass the WAL's size on. */
static int
store_wal_hook_cb(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct store	*st = arg;

	(void)db;
	(void)name;
	st->walhook(st->walarg, pages);
	return SQLITE_OK;
}

void
store_wal_hook(struct store *st, void (*hook)(void *, int), void *arg)
{
	st->walhook = hook;
	st->walarg = arg;
	sqlite3_wal_autocheckpoint(st->db, 0);
	sqlite3_wal_hook(st->db, store_wal_hook_cb, st);
}

int
store_checkpoint(struct store *st, int *wal, int *done, char **cause)
{
	int	rc;

	*wal = *done = 0;
	rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
	    wal, done);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		return store_err(st, cause, "checkpoint");
	return 0;
}

/* ---- transactions ----------------------------------------------------- */

int
store_begin(struct store *st, char **cause)
{
	/* Nothing is unwritten between transactions: a safe time to trim. */
	if (st->tabcount > STORE_CACHE_MAX)
		store_cache_clear(st);
	return store_done(st, st->stmt[SID_BEGIN], "begin", cause);
}

int
store_commit(struct store *st, char **cause)
{
	if (store_flush_all(st, 0, cause) == -1 ||
	    store_done(st, st->stmt[SID_COMMIT], "commit", cause) == -1) {
		/* COMMIT may fail and leave the transaction open. */
		if (!sqlite3_get_autocommit(st->db))
			store_done_quiet(st, st->stmt[SID_ROLLBACK]);
		store_cache_clear(st);
		return -1;
	}
	/* A transaction of its own: what was committed above stays. */
	if (store_tails_seal_round(st) == -1)
		store_cache_clear(st);
	return 0;
}

void
store_rollback(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		store_done_quiet(st, st->stmt[SID_ROLLBACK]);
	store_cache_clear(st);
}

/* ---- runs and batches ------------------------------------------------- */

static void
store_run_bind(sqlite3_stmt *s, const struct batch *b, int have_steps,
    int64_t first, int64_t last, double now)
{
	if (b->project != NULL)
		sqlite3_bind_text(s, 2, b->project, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 2);
	if (b->config_json != NULL)
		sqlite3_bind_text(s, 3, b->config_json, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 3);
	if (b->meta_json != NULL)
		sqlite3_bind_text(s, 4, b->meta_json, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 4);
	if (have_steps) {
		sqlite3_bind_int64(s, 5, first);
		sqlite3_bind_int64(s, 6, last);
	} else {
		sqlite3_bind_null(s, 5);
		sqlite3_bind_null(s, 6);
	}
	sqlite3_bind_double(s, 7, now);
	sqlite3_bind_int64(s, 8, b->dropped);
}

/*
 * b's least and greatest step into *first and *last, and the most
 * steps any of its series (or its step list) carries into *n; 0 when
 * b has no step at all.
 */
static int
store_batch_extent(const struct batch *b, int64_t *first, int64_t *last,
    int64_t *n)
{
	size_t	i, j;
	int	have_steps = 0;

	*first = INT64_MAX;
	*last = INT64_MIN;
	*n = (int64_t)b->nsteps;
	for (i = 0; i < b->nsteps; i++) {
		*first = b->steps[i] < *first ? b->steps[i] : *first;
		*last = b->steps[i] > *last ? b->steps[i] : *last;
		have_steps = 1;
	}
	for (i = 0; i < b->nseries; i++) {
		if ((int64_t)b->series[i].n > *n)
			*n = (int64_t)b->series[i].n;
		for (j = 0; j < b->series[i].n; j++) {
			int64_t	step = b->series[i].steps[j];

			*first = step < *first ? step : *first;
			*last = step > *last ? step : *last;
			have_steps = 1;
		}
	}
	return have_steps;
}

/*
 * Create or update b's run (have_steps, first and last from
 * store_batch_extent); its id in *run_id.
 */
static int
store_run_write(struct store *st, const struct batch *b, int have_steps,
    int64_t first, int64_t last, double now, int64_t *run_id, char **cause)
{
	struct store_ent	*e;
	sqlite3_stmt		*s;

	e = store_cache_get(st, 0, -1, b->run);
	/* Plain needs the run's earlier steps known, and all below b's. */
	if (!e->s.stale && (!e->s.run_known ||
	    (e->s.points > 0 && have_steps && first <= e->s.last_step)))
		st->plain = 0;
	if (!e->s.stale) {
		s = st->stmt[SID_RUN_UPDATE];
		sqlite3_bind_int64(s, 1, e->s.id);
		store_run_bind(s, b, have_steps, first, last, now);
		if (store_done(st, s, "update run", cause) == -1)
			return -1;
		if (sqlite3_changes(st->db) == 1) {
			*run_id = e->s.id;
			return 0;
		}
		e->s.stale = 1;		/* deleted behind our back */
	}
	s = st->stmt[SID_RUN_UPSERT];
	sqlite3_bind_text(s, 1, b->run, -1, SQLITE_STATIC);
	store_run_bind(s, b, have_steps, first, last, now);
	if (sqlite3_step(s) != SQLITE_ROW) {
		store_err(st, cause, "upsert run");
		sqlite3_reset(s);
		return -1;
	}
	e->s.id = sqlite3_column_int64(s, 0);
	/* Its points before b (counted later); last_step is after b. */
	e->s.points = sqlite3_column_int64(s, 1);
	e->s.last_step = sqlite3_column_int64(s, 2);
	e->s.run_known = 1;
	if (e->s.points > 0)
		st->plain = 0;
	if (sqlite3_step(s) != SQLITE_DONE) {
		store_err(st, cause, "upsert run");
		sqlite3_reset(s);
		return -1;
	}
	sqlite3_reset(s);
	e->s.stale = 0;
	*run_id = e->s.id;
	return 0;
}

/*
 * After a failed batch: undo it in the database and in the cache, the
 * tails in memory included (see store_state).
 */
static void
store_apply_undo(struct store *st, size_t pending, size_t tpoints)
{
	struct store_undo	*u;
	size_t			 i;

	if (!sqlite3_get_autocommit(st->db)) {
		store_done_quiet(st, st->stmt[SID_ROLLBACK_TO]);
		store_done_quiet(st, st->stmt[SID_RELEASE]);
	}
	if (sqlite3_get_autocommit(st->db)) {
		/* SQLite rolled back the whole transaction (e.g. disk full). */
		store_cache_clear(st);
		return;
	}
	for (i = 0; i < st->nundo; i++) {
		u = &st->undo[i];
		u->e->s = u->saved;
	}
	st->nundo = 0;
	st->pending = pending;
	st->tpoints = tpoints;
}

/* Inside a transaction: b in a savepoint of its own. */
static int
store_apply_batch(struct store *st, const struct batch *b, double now,
    int64_t *run_id, char **cause)
{
	struct store_ent	*e;
	sqlite3_stmt		*s;
	int64_t			 rid, first, last, nsteps;
	size_t			 i, pending, tpoints;
	int			 have_steps;

	/* Bound the unwritten points; each series flushes atomically. */
	if (st->pending > STORE_PENDING_MAX &&
	    store_flush_all(st, 1, cause) == -1)
		return -1;
	st->gen++;
	st->nundo = 0;
	st->added = 0;
	st->plain = 1;
	st->log_id = 0;
	pending = st->pending;
	tpoints = st->tpoints;
	if (store_done(st, st->stmt[SID_SAVEPOINT], "savepoint", cause) == -1)
		return -1;
	have_steps = store_batch_extent(b, &first, &last, &nsteps);
	if (store_run_write(st, b, have_steps, first, last, now, &rid,
	    cause) == -1)
		goto fail;
	for (i = 0; i < b->nlayers_meta; i++)
		if (store_layer_meta(st, rid, &b->layers_meta[i], cause) == -1)
			goto fail;
	for (i = 0; i < b->nseries; i++)
		if (store_series_apply(st, rid, &b->series[i], cause) == -1)
			goto fail;
	if (st->added != 0) {
		s = st->stmt[SID_RUN_POINTS];
		sqlite3_bind_int64(s, 1, rid);
		sqlite3_bind_int64(s, 2, st->added);
		if (store_done(st, s, "run points", cause) == -1)
			goto fail;
	}
	if (st->remote_log != NULL && have_steps) {
		if (store_remote_log(st, rid, first, last, nsteps, now,
		    cause) == -1)
			goto fail;
		st->log_id = sqlite3_last_insert_rowid(st->db);
	}
	if (store_done(st, st->stmt[SID_RELEASE], "release", cause) == -1)
		goto fail;
	st->nundo = 0;
	/* The run's entry learns b's steps (store_run_write reads them). */
	e = store_cache_get(st, 0, -1, b->run);
	if (e->s.run_known) {
		if (have_steps && (e->s.points == 0 || last > e->s.last_step))
			e->s.last_step = last;
		e->s.points += st->added;
	}
	*run_id = rid;
	return 0;

fail:
	store_apply_undo(st, pending, tpoints);
	return -1;
}

int64_t
store_remote_row(const struct store *st, int *plain)
{
	*plain = st->plain;
	return st->log_id;
}

int
store_apply(struct store *st, const struct batch *b, double now,
    int64_t *run_id, char **cause)
{
	if (!sqlite3_get_autocommit(st->db))
		return store_apply_batch(st, b, now, run_id, cause);
	if (store_begin(st, cause) == -1)
		return -1;
	if (store_apply_batch(st, b, now, run_id, cause) == -1) {
		store_rollback(st);
		return -1;
	}
	return store_commit(st, cause);
}

/*
 * Step s, an UPDATE of one run RETURNING its id: 0 with *run_id, 1 when
 * no run matched, -1 with *cause (what names it).  Resets s.
 */
static int
store_run_step(struct store *st, sqlite3_stmt *s, const char *what,
    int64_t *run_id, char **cause)
{
	int64_t	id = 0;
	int	rc, found = 0;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		id = sqlite3_column_int64(s, 0);
		found = 1;
	}
	if (rc != SQLITE_DONE) {
		store_err(st, cause, what);
		sqlite3_reset(s);
		return -1;
	}
	sqlite3_reset(s);
	if (!found)
		return 1;
	*run_id = id;
	return 0;
}

int
store_finish_run(struct store *st, const char *run, const char *status,
    double now, int64_t *run_id, char **cause)
{
	sqlite3_stmt	*s = st->stmt[SID_RUN_FINISH];

	sqlite3_bind_text(s, 1, run, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 3, now);
	return store_run_step(st, s, "finish run", run_id, cause);
}

int
store_annotate_run(struct store *st, const char *run, const char *tags,
    const char *note, int64_t *run_id, char **cause)
{
	sqlite3_stmt	*s = st->stmt[SID_RUN_ANNOTATE];

	sqlite3_bind_text(s, 1, run, -1, SQLITE_STATIC);
	if (tags != NULL)
		sqlite3_bind_text(s, 2, tags, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 2);
	if (note != NULL)
		sqlite3_bind_text(s, 3, note, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 3);
	return store_run_step(st, s, "annotate run", run_id, cause);
}
