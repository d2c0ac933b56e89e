/* SPDX-License-Identifier: MIT */
/*
 * store: the daemon's only SQLite writer.  Opens and migrates the
 * database, then writes batches as chunks (schema/0001).  Appends are
 * buffered per series for the length of a transaction and written at
 * store_commit() as one chunk per series (or merged into a small tail
 * chunk), so a group commit of many requests costs a row per series,
 * not per request; a cache maps run keys and (run, kind, name) to ids,
 * counts and tail chunks so that appends need no query.  Writer thread
 * only.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "batch.h"
#include "store.h"
#include "xmalloc.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "chunk blobs are little-endian: this file assumes a little-endian host"
#endif

extern const char *const schema_sql[];
extern const size_t schema_sql_count;

/* Points in one chunk row. */
#define STORE_CHUNK_MAX		4096
/* A flush of fewer points merges into a tail chunk of fewer points. */
#define STORE_MERGE_NEW_MAX	64
#define STORE_MERGE_TAIL_MAX	256
/* Pending points, all series, before a flush in mid-transaction. */
#define STORE_PENDING_MAX	((size_t)1 << 20)
/* A flushed buffer this small is kept, while all of them fit the bytes. */
#define STORE_KEEP_POINTS	STORE_CHUNK_MAX
#define STORE_KEEP_BYTES	((size_t)32 << 20)
/* Cached entries before the cache is emptied between transactions. */
#define STORE_CACHE_MAX		((size_t)1 << 18)
#define STORE_BUSY_MS		5000

enum store_sid {
	SID_BEGIN,
	SID_COMMIT,
	SID_ROLLBACK,
	SID_SAVEPOINT,
	SID_RELEASE,
	SID_ROLLBACK_TO,
	SID_FLUSH_SAVEPOINT,
	SID_FLUSH_RELEASE,
	SID_FLUSH_ROLLBACK_TO,
	SID_RUN_UPSERT,
	SID_RUN_UPDATE,
	SID_RUN_FINISH,
	SID_SERIES_GET,
	SID_SERIES_INSERT,
	SID_SERIES_UPDATE,
	SID_SERIES_META,
	SID_CHUNK_TAIL,
	SID_CHUNK_GET,
	SID_CHUNK_SPAN,
	SID_CHUNK_OVERLAP,
	SID_CHUNK_INSERT,
	SID_CHUNK_UPDATE,
	SID_CHUNK_DELETE,
	SID_COUNT
};

/* Both run statements take ?2..?9 alike; ?1 is the key or the id. */
#define STORE_RUN_SET							\
	"project = coalesce(?2, project), config = coalesce(?3, config), " \
	"meta = coalesce(?4, meta), "					\
	"first_step = min(coalesce(first_step, ?5), "			\
	"coalesce(?5, first_step)), "					\
	"last_step = max(coalesce(last_step, ?6), coalesce(?6, last_step)), " \
	"last_seen = ?7, points = points + ?8, dropped = dropped + ?9"

/* Chunk reads return id, first_step, n, steps, vals (store_chunk_load). */
#define STORE_CHUNK_COLS	"id, first_step, n, steps, vals"

static const char *const store_sql[SID_COUNT] = {
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
	    "last_step, started_at, last_seen, points, dropped) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9) "
	    "ON CONFLICT (key) DO UPDATE SET " STORE_RUN_SET " RETURNING id",
	[SID_RUN_UPDATE] = "UPDATE runs SET " STORE_RUN_SET " WHERE id = ?1",
	[SID_RUN_FINISH] =
	    "UPDATE runs SET status = ?2, last_seen = ?3 WHERE key = ?1 "
	    "RETURNING id",
	[SID_SERIES_GET] =
	    "SELECT id, points, last_step, last_value, last_class FROM series "
	    "WHERE run_id = ?1 AND kind = ?2 AND name = ?3",
	[SID_SERIES_INSERT] =
	    "INSERT INTO series (run_id, kind, name) VALUES (?1, ?2, ?3)",
	[SID_SERIES_UPDATE] =
	    "UPDATE series SET points = ?2, last_step = ?3, last_value = ?4, "
	    "last_class = ?5 WHERE id = ?1",
	[SID_SERIES_META] =
	    "UPDATE series SET numel = coalesce(?2, numel), "
	    "depth = coalesce(?3, depth), shape = coalesce(?4, shape) "
	    "WHERE id = ?1",
	[SID_CHUNK_TAIL] =
	    "SELECT id, n FROM chunks WHERE series_id = ?1 "
	    "ORDER BY first_step DESC LIMIT 1",
	/* The series check guards against a cached id reused by SQLite. */
	[SID_CHUNK_GET] =
	    "SELECT " STORE_CHUNK_COLS " FROM chunks "
	    "WHERE id = ?1 AND series_id = ?2",
	[SID_CHUNK_SPAN] =
	    "SELECT coalesce(max(last_step - first_step), 0) FROM chunks "
	    "WHERE series_id = ?1",
	/*
	 * Chunks meeting steps [?3, ?2].  None spans more than ?4 steps, so
	 * the index range starts at ?3 - ?4, not at the series' start.
	 */
	[SID_CHUNK_OVERLAP] =
	    "SELECT " STORE_CHUNK_COLS " FROM chunks WHERE series_id = ?1 "
	    "AND first_step >= ?3 - ?4 AND first_step <= ?2 "
	    "AND last_step >= ?3 ORDER BY first_step",
	/* Insert and update bind ?2..?11 alike (store_chunk_bind). */
	[SID_CHUNK_INSERT] =
	    "INSERT INTO chunks (series_id, first_step, last_step, n, steps, "
	    "vals, min_value, min_step, max_value, max_step, nonfinite) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[SID_CHUNK_UPDATE] =
	    "UPDATE chunks SET first_step = ?2, last_step = ?3, n = ?4, "
	    "steps = ?5, vals = ?6, min_value = ?7, min_step = ?8, "
	    "max_value = ?9, max_step = ?10, nonfinite = ?11 WHERE id = ?1",
	[SID_CHUNK_DELETE] = "DELETE FROM chunks WHERE id = ?1",
};

/* What the cache knows of a series' tail chunk. */
enum store_tail {
	STORE_TAIL_NONE,	/* the series has no chunk */
	STORE_TAIL_KNOWN,	/* tail_id is a chunk no stored step follows */
	STORE_TAIL_UNKNOWN	/* ask the database when it matters */
};

/*
 * What the cache holds of a run or series, copied whole before a batch
 * changes it so that a failed batch can be undone.  For a series,
 * points, last_step and last_value count the pending points too; the
 * series row is brought up to date when they are flushed.
 */
struct store_state {
	int		 stale;		/* reload from the database */
	int64_t		 id;
	int64_t		 points;	/* distinct steps */
	int64_t		 last_step;	/* the greatest, if points > 0 */
	double		 last_value;	/* its value */
	enum store_tail	 tail;
	int64_t		 tail_id;
	int64_t		 tail_n;
	int64_t		 maxspan;	/* >= any chunk's span; -1: ask */
	size_t		 pn;		/* pending points */
	int		 dirty;		/* the series row is behind */
};

/*
 * A cached run (kind -1, run_id 0, name the key) or series.  Pending
 * points are appends not yet written: ascending, unique, and after
 * every step stored in the series' chunks.  A stale entry has none.
 */
struct store_ent {
	char			*name;
	int64_t			 run_id;
	int			 kind;
	int			 queued;	/* in st->dirty */
	uint64_t		 hash;
	uint64_t		 gen;		/* last batch to touch it */
	struct store_state	 s;
	int64_t			*psteps;
	double			*pvals;
	size_t			 pcap;
};

/* An entry as it was before the current batch touched it. */
struct store_undo {
	struct store_ent	*e;
	struct store_state	 saved;
};

/* Points as two arrays; scratch space owned by the store. */
struct store_buf {
	int64_t		*steps;
	double		*vals;
	size_t		 n;
	size_t		 cap;
};

struct store_sortkey {
	int64_t		 step;
	size_t		 idx;
};

struct store {
	sqlite3			*db;
	sqlite3_stmt		*stmt[SID_COUNT];

	/* The cache: open addressing, linear probing. */
	struct store_ent	**tab;
	size_t			 tabsize;	/* a power of two */
	size_t			 tabcount;
	uint64_t		 gen;		/* store_apply() calls */
	struct store_undo	*undo;		/* what the batch touched */
	size_t			 nundo;
	size_t			 undocap;
	struct store_ent	**dirty;	/* entries to flush */
	size_t			 ndirty;
	size_t			 dirtycap;
	size_t			 pending;	/* points, all series */
	size_t			 pbytes;	/* in pending buffers */

	/* Scratch space for writing a series. */
	struct store_sortkey	*keys;
	size_t			 keyscap;
	struct store_buf	 sorted;	/* batch points, sorted */
	struct store_buf	 old;		/* points of chunks read */
	struct store_buf	 oldsorted;
	struct store_buf	 merged;	/* old and new, new wins */
	int64_t			*cand;		/* ids of chunks read */
	size_t			 ncand;
	size_t			 candcap;
};

static int
store_err(struct store *st, char **cause, const char *what)
{
	xasprintf(cause, "store: %s: %s", what, sqlite3_errmsg(st->db));
	return -1;
}

/* Step a statement that returns no row, then reset it. */
static int
store_done(struct store *st, enum store_sid sid, const char *what,
    char **cause)
{
	sqlite3_stmt	*s = st->stmt[sid];

	if (sqlite3_step(s) != SQLITE_DONE) {
		store_err(st, cause, what);
		sqlite3_reset(s);
		return -1;
	}
	sqlite3_reset(s);
	return 0;
}

/* Like store_done(), for cleanup paths that have a cause already. */
static void
store_done_quiet(struct store *st, enum store_sid sid)
{
	char	*ignored = NULL;

	if (store_done(st, sid, "cleanup", &ignored) == -1)
		free(ignored);
}

static int
store_exec(struct store *st, const char *sql, char **cause)
{
	char	*msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		xasprintf(cause, "store: %s: %s", sql,
		    msg != NULL ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static void
store_buf_reserve(struct store_buf *buf, size_t n)
{
	if (n <= buf->cap)
		return;
	buf->cap = buf->cap == 0 ? 256 : buf->cap;
	while (buf->cap < n)
		buf->cap *= 2;
	buf->steps = xreallocarray(buf->steps, buf->cap, sizeof *buf->steps);
	buf->vals = xreallocarray(buf->vals, buf->cap, sizeof *buf->vals);
}

static void
store_buf_free(struct store_buf *buf)
{
	free(buf->steps);
	free(buf->vals);
}

/* Class of v for the *_class columns: 0 finite, 1 NaN, 2 +Inf, 3 -Inf. */
static int
store_class(double v)
{
	if (isnan(v))
		return 1;
	if (isinf(v))
		return v > 0 ? 2 : 3;
	return 0;
}

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

/*
 * Forget e's pending points once written.  Small buffers are kept for
 * the next transaction, within a budget, so that steady appends do not
 * go through malloc; memory stays bounded whatever the series count.
 */
static void
store_pending_done(struct store *st, struct store_ent *e)
{
	st->pending -= e->s.pn;
	e->s.pn = 0;
	if (e->pcap <= STORE_KEEP_POINTS && st->pbytes <= STORE_KEEP_BYTES)
		return;
	st->pbytes -= e->pcap * (sizeof *e->psteps + sizeof *e->pvals);
	free(e->psteps);
	free(e->pvals);
	e->psteps = NULL;
	e->pvals = NULL;
	e->pcap = 0;
}

/* Room for n more pending points in e. */
static void
store_pending_reserve(struct store *st, struct store_ent *e, size_t n)
{
	size_t	cap;

	if (e->s.pn + n <= e->pcap)
		return;
	cap = e->pcap == 0 ? 16 : e->pcap;
	while (cap < e->s.pn + n)
		cap *= 2;
	e->psteps = xreallocarray(e->psteps, cap, sizeof *e->psteps);
	e->pvals = xreallocarray(e->pvals, cap, sizeof *e->pvals);
	st->pbytes += (cap - e->pcap) * (sizeof *e->psteps + sizeof *e->pvals);
	e->pcap = cap;
}

/* Forget everything cached, pending points included. */
static void
store_cache_clear(struct store *st)
{
	size_t	i;

	for (i = 0; i < st->tabsize; i++) {
		if (st->tab[i] != NULL) {
			free(st->tab[i]->psteps);
			free(st->tab[i]->pvals);
			free(st->tab[i]->name);
			free(st->tab[i]);
			st->tab[i] = NULL;
		}
	}
	st->tabcount = 0;
	st->nundo = 0;
	st->ndirty = 0;
	st->pending = 0;
	st->pbytes = 0;
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
static struct store_ent *
store_cache_find(struct store *st, int64_t run_id, int kind,
    const char *name)
{
	if (st->tabsize == 0)
		return NULL;
	return st->tab[store_cache_slot(st, run_id, kind, name,
	    store_hash(run_id, kind, name))];
}

/* Record e's state before the current batch changes it. */
static void
store_touch(struct store *st, struct store_ent *e)
{
	if (e->gen == st->gen)
		return;
	e->gen = st->gen;
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
static struct store_ent *
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

/* Remember that e has pending points or a series row to write. */
static void
store_queue(struct store *st, struct store_ent *e)
{
	e->s.dirty = 1;
	if (e->queued)
		return;
	if (st->ndirty == st->dirtycap) {
		st->dirtycap = st->dirtycap == 0 ? 64 : st->dirtycap * 2;
		st->dirty = xreallocarray(st->dirty, st->dirtycap,
		    sizeof *st->dirty);
	}
	st->dirty[st->ndirty++] = e;
	e->queued = 1;
}

/* ---- open, close ------------------------------------------------------ */

int
store_schema_version(void)
{
	return (int)schema_sql_count;
}

static int
store_user_version(struct store *st, int *version, char **cause)
{
	sqlite3_stmt	*s = NULL;

	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s,
	    NULL) != SQLITE_OK)
		return store_err(st, cause, "user_version");
	if (sqlite3_step(s) != SQLITE_ROW) {
		store_err(st, cause, "user_version");
		sqlite3_finalize(s);
		return -1;
	}
	*version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return 0;
}

/*
 * Apply the missing migrations, each in its own transaction.  The
 * version is read inside the transaction, so two processes opening the
 * same file cannot apply a migration twice.
 */
static int
store_migrate(struct store *st, const char *path, char **cause)
{
	char	*sql = NULL;
	int	 version, latest = store_schema_version();

	for (;;) {
		if (store_exec(st, "BEGIN IMMEDIATE", cause) == -1)
			return -1;
		if (store_user_version(st, &version, cause) == -1)
			goto fail;
		if (version > latest) {
			xasprintf(cause, "%s: schema version %d is newer than "
			    "this gradwatchd (%d); upgrade gradwatchd", path,
			    version, latest);
			goto fail;
		}
		if (version < 0) {
			xasprintf(cause, "%s: invalid schema version %d", path,
			    version);
			goto fail;
		}
		if (version == latest)
			break;
		if (store_exec(st, schema_sql[version], cause) == -1)
			goto fail;
		xasprintf(&sql, "PRAGMA user_version = %d", version + 1);
		if (store_exec(st, sql, cause) == -1)
			goto fail;
		free(sql);
		sql = NULL;
		if (store_exec(st, "COMMIT", cause) == -1)
			goto fail;
	}
	return store_exec(st, "COMMIT", cause);

fail:
	free(sql);
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int
store_journal_cb(void *arg, int ncol, char **vals, char **names)
{
	char	*mode = arg;

	(void)names;
	if (ncol > 0 && vals[0] != NULL)
		snprintf(mode, 16, "%s", vals[0]);
	return 0;
}

struct store *
store_open(const char *path, char **cause)
{
	struct store	*st;
	char		 mode[16] = "";
	char		*msg = NULL;
	int		 i;

	st = xcalloc(1, sizeof *st);
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
	 * A 64 MiB page cache keeps the b-tree pages that every commit
	 * touches; with the default 2 MiB the writer re-read them.
	 */
	if (store_exec(st, "PRAGMA synchronous = NORMAL", cause) == -1 ||
	    store_exec(st, "PRAGMA cache_size = -65536", cause) == -1 ||
	    store_exec(st, "PRAGMA journal_size_limit = 67108864", cause) == -1 ||
	    store_exec(st, "PRAGMA foreign_keys = ON", cause) == -1)
		goto fail;
	if (store_migrate(st, path, cause) == -1)
		goto fail;
	for (i = 0; i < SID_COUNT; i++) {
		if (sqlite3_prepare_v3(st->db, store_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL) !=
		    SQLITE_OK) {
			xasprintf(cause, "store: prepare %s: %s", store_sql[i],
			    sqlite3_errmsg(st->db));
			goto fail;
		}
	}
	return st;

fail:
	store_close(st);
	return NULL;
}

void
store_close(struct store *st)
{
	int	i;

	if (st == NULL)
		return;
	for (i = 0; i < SID_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
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
	free(st);
}

sqlite3 *
store_db(struct store *st)
{
	return st->db;
}

/* ---- points in chunks ------------------------------------------------- */

static int
store_sortkey_cmp(const void *a, const void *b)
{
	const struct store_sortkey	*x = a, *y = b;

	if (x->step != y->step)
		return x->step < y->step ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Points (steps, vals, n) in ascending step order with each step once,
 * the last of equal steps winning.  Returns the input itself when it is
 * already so (the common case), or out's arrays.
 */
static void
store_normalize(struct store *st, const int64_t *steps, const double *vals,
    size_t n, struct store_buf *out, const int64_t **rsteps,
    const double **rvals, size_t *rn)
{
	size_t	i, m;

	for (i = 1; i < n; i++)
		if (steps[i] <= steps[i - 1])
			break;
	if (i >= n) {
		*rsteps = steps;
		*rvals = vals;
		*rn = n;
		return;
	}
	if (n > st->keyscap) {
		st->keyscap = n;
		st->keys = xreallocarray(st->keys, n, sizeof *st->keys);
	}
	for (i = 0; i < n; i++) {
		st->keys[i].step = steps[i];
		st->keys[i].idx = i;
	}
	/* Ties broken by position: a stable sort, so the last one wins. */
	qsort(st->keys, n, sizeof *st->keys, store_sortkey_cmp);
	store_buf_reserve(out, n);
	for (i = 0, m = 0; i < n; i++) {
		if (i + 1 < n && st->keys[i + 1].step == st->keys[i].step)
			continue;
		out->steps[m] = st->keys[i].step;
		out->vals[m] = vals[st->keys[i].idx];
		m++;
	}
	out->n = m;
	*rsteps = out->steps;
	*rvals = out->vals;
	*rn = m;
}

/* Append the chunk in the current row of s (STORE_CHUNK_COLS) to st->old. */
static int
store_chunk_load(struct store *st, sqlite3_stmt *s, char **cause)
{
	struct store_buf	*o = &st->old;
	const void		*sb, *vb;
	int64_t			 id, first, n, i;

	id = sqlite3_column_int64(s, 0);
	first = sqlite3_column_int64(s, 1);
	n = sqlite3_column_int64(s, 2);
	sb = sqlite3_column_blob(s, 3);
	vb = sqlite3_column_blob(s, 4);
	if (n <= 0 || n > INT32_MAX / 8 ||
	    sqlite3_column_bytes(s, 4) != n * 8 ||
	    (sb != NULL && sqlite3_column_bytes(s, 3) != n * 8)) {
		xasprintf(cause, "store: chunk %lld is corrupt", (long long)id);
		return -1;
	}
	store_buf_reserve(o, o->n + (size_t)n);
	if (sb != NULL)
		memcpy(o->steps + o->n, sb, (size_t)n * 8);
	else
		for (i = 0; i < n; i++)
			o->steps[o->n + (size_t)i] = first + i;
	memcpy(o->vals + o->n, vb, (size_t)n * 8);
	o->n += (size_t)n;

	if (st->ncand == st->candcap) {
		st->candcap = st->candcap == 0 ? 16 : st->candcap * 2;
		st->cand = xreallocarray(st->cand, st->candcap,
		    sizeof *st->cand);
	}
	st->cand[st->ncand++] = id;
	return 0;
}

/*
 * Read the chunks that a statement (already bound) returns into st->old.
 * All rows are read before any chunk is rewritten: SQLite leaves a
 * table changed under a running SELECT undefined.
 */
static int
store_chunks_read(struct store *st, enum store_sid sid, char **cause)
{
	sqlite3_stmt	*s = st->stmt[sid];
	int		 rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (store_chunk_load(st, s, cause) == -1) {
			sqlite3_reset(s);
			return -1;
		}
	}
	if (rc != SQLITE_DONE) {
		store_err(st, cause, "read chunks");
		sqlite3_reset(s);
		return -1;
	}
	sqlite3_reset(s);
	return 0;
}

/* Bind ?2..?11 of a chunk insert or update: the points and their summary. */
static void
store_chunk_bind(sqlite3_stmt *s, const int64_t *steps, const double *vals,
    size_t n)
{
	size_t	i, imin = SIZE_MAX, imax = SIZE_MAX;
	int64_t	nonfinite = 0;
	double	v, lo = INFINITY, hi = -INFINITY;

	/* The first of equal extremes wins; any finite v beats the start. */
	for (i = 0; i < n; i++) {
		v = vals[i];
		if (!isfinite(v)) {
			nonfinite++;
			continue;
		}
		if (v < lo) {
			lo = v;
			imin = i;
		}
		if (v > hi) {
			hi = v;
			imax = i;
		}
	}
	sqlite3_bind_int64(s, 2, steps[0]);
	sqlite3_bind_int64(s, 3, steps[n - 1]);
	sqlite3_bind_int64(s, 4, (int64_t)n);
	/* Strictly ascending, so this span means consecutive. */
	if ((uint64_t)steps[n - 1] - (uint64_t)steps[0] == n - 1)
		sqlite3_bind_null(s, 5);
	else
		sqlite3_bind_blob(s, 5, steps, (int)(n * 8), SQLITE_STATIC);
	sqlite3_bind_blob(s, 6, vals, (int)(n * 8), SQLITE_STATIC);
	if (imin != SIZE_MAX) {
		sqlite3_bind_double(s, 7, vals[imin]);
		sqlite3_bind_int64(s, 8, steps[imin]);
		sqlite3_bind_double(s, 9, vals[imax]);
		sqlite3_bind_int64(s, 10, steps[imax]);
	} else {
		for (i = 7; i <= 10; i++)
			sqlite3_bind_null(s, (int)i);
	}
	sqlite3_bind_int64(s, 11, nonfinite);
}

/*
 * Write points (ascending, unique) as chunks of at most STORE_CHUNK_MAX,
 * reusing the rows st->cand (which held them before), inserting more
 * rows or deleting surplus ones.  The last chunk's id and size go to
 * *last_id and *last_n.
 */
static int
store_chunks_write(struct store *st, struct store_ent *e,
    const int64_t *steps, const double *vals, size_t n, int64_t *last_id,
    int64_t *last_n, char **cause)
{
	sqlite3_stmt	*s;
	size_t		 off, k, i;

	for (off = 0, i = 0; off < n; off += k, i++) {
		k = n - off < STORE_CHUNK_MAX ? n - off : STORE_CHUNK_MAX;
		if (e->s.maxspan >= 0 &&
		    steps[off + k - 1] - steps[off] > e->s.maxspan)
			e->s.maxspan = steps[off + k - 1] - steps[off];
		if (i < st->ncand) {
			s = st->stmt[SID_CHUNK_UPDATE];
			sqlite3_bind_int64(s, 1, st->cand[i]);
			store_chunk_bind(s, steps + off, vals + off, k);
			if (store_done(st, SID_CHUNK_UPDATE, "update chunk",
			    cause) == -1)
				return -1;
			*last_id = st->cand[i];
		} else {
			s = st->stmt[SID_CHUNK_INSERT];
			sqlite3_bind_int64(s, 1, e->s.id);
			store_chunk_bind(s, steps + off, vals + off, k);
			if (store_done(st, SID_CHUNK_INSERT, "insert chunk",
			    cause) == -1)
				return -1;
			*last_id = sqlite3_last_insert_rowid(st->db);
		}
		*last_n = (int64_t)k;
	}
	for (; i < st->ncand; i++) {
		sqlite3_bind_int64(st->stmt[SID_CHUNK_DELETE], 1, st->cand[i]);
		if (store_done(st, SID_CHUNK_DELETE, "delete chunk",
		    cause) == -1)
			return -1;
	}
	return 0;
}

/* Merge old (ascending, unique) and new points into st->merged; new wins. */
static void
store_merge(struct store *st, const int64_t *os, const double *ov, size_t on,
    const int64_t *ns, const double *nv, size_t nn)
{
	struct store_buf	*m = &st->merged;
	size_t			 i = 0, j = 0, k = 0;

	store_buf_reserve(m, on + nn);
	while (i < on && j < nn) {
		if (os[i] < ns[j]) {
			m->steps[k] = os[i];
			m->vals[k++] = ov[i++];
		} else {
			if (os[i] == ns[j])
				i++;
			m->steps[k] = ns[j];
			m->vals[k++] = nv[j++];
		}
	}
	for (; i < on; i++, k++) {
		m->steps[k] = os[i];
		m->vals[k] = ov[i];
	}
	for (; j < nn; j++, k++) {
		m->steps[k] = ns[j];
		m->vals[k] = nv[j];
	}
	m->n = k;
}

/* Find e's tail chunk if the cache does not know it. */
static int
store_tail_find(struct store *st, struct store_ent *e, char **cause)
{
	sqlite3_stmt	*s = st->stmt[SID_CHUNK_TAIL];
	int		 rc;

	if (e->s.tail != STORE_TAIL_UNKNOWN)
		return 0;
	sqlite3_bind_int64(s, 1, e->s.id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		e->s.tail = STORE_TAIL_KNOWN;
		e->s.tail_id = sqlite3_column_int64(s, 0);
		e->s.tail_n = sqlite3_column_int64(s, 1);
	} else if (rc == SQLITE_DONE)
		e->s.tail = STORE_TAIL_NONE;
	else {
		store_err(st, cause, "find tail chunk");
		sqlite3_reset(s);
		return -1;
	}
	sqlite3_reset(s);
	return 0;
}

/*
 * Find a bound of e's chunk spans if the cache has none: a scan of the
 * series' chunks, once per series while it stays cached.
 */
static int
store_maxspan_find(struct store *st, struct store_ent *e, char **cause)
{
	sqlite3_stmt	*s = st->stmt[SID_CHUNK_SPAN];

	if (e->s.maxspan >= 0)
		return 0;
	sqlite3_bind_int64(s, 1, e->s.id);
	if (sqlite3_step(s) != SQLITE_ROW) {
		store_err(st, cause, "chunk spans");
		sqlite3_reset(s);
		return -1;
	}
	e->s.maxspan = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return 0;
}

/*
 * Store points (ascending, unique) of series e in its chunks.  After
 * every stored step (append), nothing is read but a small tail chunk to
 * merge into.  Otherwise every chunk whose range meets the points is
 * read, merged with them (the new value winning) and written back over
 * the same rows, so that no step is ever stored twice.  reached: the
 * points include the series' greatest step.  *added is the number of
 * steps that were not stored before.
 */
static int
store_points_write(struct store *st, struct store_ent *e, int append,
    int reached, const int64_t *ns, const double *nv, size_t nn,
    int64_t *added, char **cause)
{
	sqlite3_stmt	*s;
	const int64_t	*ws, *os;
	const double	*wv, *ov;
	size_t		 wn, on;
	int64_t		 last_id = 0, last_n = 0;
	int		 merge;

	st->old.n = 0;
	st->ncand = 0;
	merge = append && nn < STORE_MERGE_NEW_MAX;
	if (merge && store_tail_find(st, e, cause) == -1)
		return -1;
	if (merge && e->s.tail == STORE_TAIL_KNOWN &&
	    e->s.tail_n < STORE_MERGE_TAIL_MAX) {
		s = st->stmt[SID_CHUNK_GET];
		sqlite3_bind_int64(s, 1, e->s.tail_id);
		sqlite3_bind_int64(s, 2, e->s.id);
		if (store_chunks_read(st, SID_CHUNK_GET, cause) == -1)
			return -1;
	} else if (!append) {
		if (store_maxspan_find(st, e, cause) == -1)
			return -1;
		s = st->stmt[SID_CHUNK_OVERLAP];
		sqlite3_bind_int64(s, 1, e->s.id);
		sqlite3_bind_int64(s, 2, ns[nn - 1]);
		sqlite3_bind_int64(s, 3, ns[0]);
		sqlite3_bind_int64(s, 4, e->s.maxspan);
		if (store_chunks_read(st, SID_CHUNK_OVERLAP, cause) == -1)
			return -1;
	}

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
	if (store_chunks_write(st, e, ws, wv, wn, &last_id, &last_n,
	    cause) == -1)
		return -1;
	*added = (int64_t)wn - (int64_t)st->old.n;
	if (reached) {
		/* The last chunk written holds the greatest step. */
		e->s.tail = STORE_TAIL_KNOWN;
		e->s.tail_id = last_id;
		e->s.tail_n = last_n;
	} else {
		/* The tail may have been among the chunks rewritten. */
		e->s.tail = STORE_TAIL_UNKNOWN;
	}
	return 0;
}

/*
 * Write e's pending points and its series row, leaving e's buffer for
 * store_flush_done() once the writes are sure to stay.
 */
static int
store_flush_write(struct store *st, struct store_ent *e, char **cause)
{
	sqlite3_stmt	*s = st->stmt[SID_SERIES_UPDATE];
	int64_t		 added;
	int		 class;

	if (e->s.stale || !e->s.dirty)
		return 0;
	if (e->s.pn > 0 && store_points_write(st, e, 1, 1, e->psteps,
	    e->pvals, e->s.pn, &added, cause) == -1)
		return -1;
	sqlite3_bind_int64(s, 1, e->s.id);
	sqlite3_bind_int64(s, 2, e->s.points);
	if (e->s.points > 0) {
		class = store_class(e->s.last_value);
		sqlite3_bind_int64(s, 3, e->s.last_step);
		if (class == 0)
			sqlite3_bind_double(s, 4, e->s.last_value);
		else
			sqlite3_bind_null(s, 4);
		sqlite3_bind_int(s, 5, class);
	} else {
		sqlite3_bind_null(s, 3);
		sqlite3_bind_null(s, 4);
		sqlite3_bind_int(s, 5, 0);
	}
	return store_done(st, SID_SERIES_UPDATE, "update series", cause);
}

static void
store_flush_done(struct store *st, struct store_ent *e)
{
	if (e->s.stale || !e->s.dirty)
		return;
	store_pending_done(st, e);
	e->s.dirty = 0;
}

/*
 * Flush e in a savepoint of its own: on failure the database and e are
 * as they were, pending points included.
 */
static int
store_flush_atomic(struct store *st, struct store_ent *e, char **cause)
{
	struct store_state	saved = e->s;

	if (store_done(st, SID_FLUSH_SAVEPOINT, "savepoint", cause) == -1)
		return -1;
	if (store_flush_write(st, e, cause) == -1 ||
	    store_done(st, SID_FLUSH_RELEASE, "release", cause) == -1) {
		store_done_quiet(st, SID_FLUSH_ROLLBACK_TO);
		store_done_quiet(st, SID_FLUSH_RELEASE);
		e->s = saved;
		return -1;
	}
	store_flush_done(st, e);
	return 0;
}

/* Flush every queued entry; atomic: each in its own savepoint. */
static int
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
			/* A failure here rolls back more than e. */
			if (store_flush_write(st, e, cause) == -1)
				return -1;
			store_flush_done(st, e);
		}
	}
	for (i = 0; i < st->ndirty; i++)
		st->dirty[i]->queued = 0;
	st->ndirty = 0;
	return 0;
}

/* ---- transactions ----------------------------------------------------- */

int
store_begin(struct store *st, char **cause)
{
	/* Nothing is pending between transactions: a safe time to trim. */
	if (st->tabcount > STORE_CACHE_MAX)
		store_cache_clear(st);
	return store_done(st, SID_BEGIN, "begin", cause);
}

int
store_commit(struct store *st, char **cause)
{
	if (store_flush_all(st, 0, cause) == -1 ||
	    store_done(st, SID_COMMIT, "commit", cause) == -1) {
		/* COMMIT may fail and leave the transaction open. */
		if (!sqlite3_get_autocommit(st->db))
			store_done_quiet(st, SID_ROLLBACK);
		store_cache_clear(st);
		return -1;
	}
	return 0;
}

void
store_rollback(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		store_done_quiet(st, SID_ROLLBACK);
	store_cache_clear(st);
}

/* ---- runs and series -------------------------------------------------- */

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
	sqlite3_bind_int64(s, 8, (int64_t)b->npoints);
	sqlite3_bind_int64(s, 9, b->dropped);
}

/* Create or update b's run; its id in *run_id. */
static int
store_run_write(struct store *st, const struct batch *b, double now,
    int64_t *run_id, char **cause)
{
	struct store_ent	*e;
	sqlite3_stmt		*s;
	int64_t			 first = INT64_MAX, last = INT64_MIN;
	size_t			 i, j;
	int			 have_steps = 0;

	for (i = 0; i < b->nsteps; i++) {
		first = b->steps[i] < first ? b->steps[i] : first;
		last = b->steps[i] > last ? b->steps[i] : last;
		have_steps = 1;
	}
	for (i = 0; i < b->nseries; i++) {
		for (j = 0; j < b->series[i].n; j++) {
			int64_t	step = b->series[i].steps[j];

			first = step < first ? step : first;
			last = step > last ? step : last;
			have_steps = 1;
		}
	}

	e = store_cache_get(st, 0, -1, b->run);
	if (!e->s.stale) {
		s = st->stmt[SID_RUN_UPDATE];
		sqlite3_bind_int64(s, 1, e->s.id);
		store_run_bind(s, b, have_steps, first, last, now);
		if (store_done(st, SID_RUN_UPDATE, "update run", cause) == -1)
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

/* The value a REAL column and its class column stand for. */
static double
store_column_value(sqlite3_stmt *s, int value_col, int class_col)
{
	switch (sqlite3_column_int(s, class_col)) {
	case 1:
		return NAN;
	case 2:
		return INFINITY;
	case 3:
		return -INFINITY;
	default:
		return sqlite3_column_double(s, value_col);
	}
}

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
		e->s.last_value = store_column_value(s, 3, 4);
		e->s.tail = e->s.points > 0 ? STORE_TAIL_UNKNOWN :
		    STORE_TAIL_NONE;
		e->s.maxspan = e->s.points > 0 ? -1 : 0;
		sqlite3_reset(s);
	} else if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		s = st->stmt[SID_SERIES_INSERT];
		sqlite3_bind_int64(s, 1, run_id);
		sqlite3_bind_text(s, 2, kname, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
		if (store_done(st, SID_SERIES_INSERT, "insert series",
		    cause) == -1) {
			e->s.stale = 1;
			return NULL;
		}
		e->s.id = sqlite3_last_insert_rowid(st->db);
		e->s.tail = STORE_TAIL_NONE;
	} else {
		store_err(st, cause, "read series");
		sqlite3_reset(s);
		e->s.stale = 1;
		return NULL;
	}
	return e;
}

static int
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
	return store_done(st, SID_SERIES_META, "layer metadata", cause);
}

/*
 * Before b's savepoint: flush the pending points that b's series cannot
 * simply follow (b resends a step, or the buffer would pass a chunk),
 * and everything when too much is pending.  A batch then only appends
 * to pending points, or rewrites chunks of a series with none pending.
 */
static int
store_preflush(struct store *st, const struct batch *b, char **cause)
{
	const struct batch_series	*bs;
	struct store_ent		*re, *e;
	int64_t				 first;
	size_t				 i, j;

	if (st->pending > STORE_PENDING_MAX)
		return store_flush_all(st, 1, cause);
	re = store_cache_find(st, 0, -1, b->run);
	if (re == NULL || re->s.stale)
		return 0;	/* so none of its series has pending points */
	for (i = 0; i < b->nseries; i++) {
		bs = &b->series[i];
		e = store_cache_find(st, re->s.id, (int)bs->kind, bs->name);
		if (e == NULL || e->s.pn == 0 || bs->n == 0)
			continue;
		first = INT64_MAX;
		for (j = 0; j < bs->n; j++)
			first = bs->steps[j] < first ? bs->steps[j] : first;
		if ((first <= e->s.last_step ||
		    e->s.pn + bs->n > STORE_CHUNK_MAX) &&
		    store_flush_atomic(st, e, cause) == -1)
			return -1;
	}
	return 0;
}

/* Store one series of a batch: buffer an append, or rewrite chunks. */
static int
store_series_apply(struct store *st, int64_t run_id,
    const struct batch_series *bs, char **cause)
{
	struct store_ent	*e;
	const int64_t		*ns;
	const double		*nv;
	size_t			 nn;
	int64_t			 added;
	int			 reached;

	if (bs->n == 0)
		return 0;
	if ((e = store_series_get(st, run_id, bs->kind, bs->name,
	    cause)) == NULL)
		return -1;
	store_normalize(st, bs->steps, bs->values, bs->n, &st->sorted,
	    &ns, &nv, &nn);

	if (e->s.points == 0 || ns[0] > e->s.last_step) {
		store_pending_reserve(st, e, nn);
		memcpy(e->psteps + e->s.pn, ns, nn * sizeof *ns);
		memcpy(e->pvals + e->s.pn, nv, nn * sizeof *nv);
		e->s.pn += nn;
		st->pending += nn;
		e->s.points += (int64_t)nn;
		e->s.last_step = ns[nn - 1];
		e->s.last_value = nv[nn - 1];
		store_queue(st, e);
		return 0;
	}
	if (e->s.pn != 0) {
		/* store_preflush() flushes these; the batch must not. */
		xasprintf(cause, "store: series %s has pending points",
		    bs->name);
		return -1;
	}
	reached = ns[nn - 1] >= e->s.last_step;
	if (store_points_write(st, e, 0, reached, ns, nv, nn, &added,
	    cause) == -1)
		return -1;
	e->s.points += added;
	if (reached) {
		e->s.last_step = ns[nn - 1];
		e->s.last_value = nv[nn - 1];
	}
	store_queue(st, e);
	return 0;
}

/* After a failed batch: undo it in the database and in the cache. */
static void
store_apply_undo(struct store *st, int outer, size_t pending)
{
	struct store_undo	*u;
	size_t			 i;

	if (!sqlite3_get_autocommit(st->db)) {
		store_done_quiet(st, SID_ROLLBACK_TO);
		store_done_quiet(st, SID_RELEASE);
	}
	if (outer && sqlite3_get_autocommit(st->db)) {
		/* SQLite rolled back the whole transaction (e.g. disk full). */
		store_cache_clear(st);
		return;
	}
	/* Pending buffers only grew, so their old contents are intact. */
	for (i = 0; i < st->nundo; i++) {
		u = &st->undo[i];
		u->e->s = u->saved;
	}
	st->nundo = 0;
	st->pending = pending;
}

int
store_apply(struct store *st, const struct batch *b, double now,
    int64_t *run_id, char **cause)
{
	int64_t	rid;
	size_t	i, pending;
	int	outer;

	outer = !sqlite3_get_autocommit(st->db);
	if (!outer && st->tabcount > STORE_CACHE_MAX)
		store_cache_clear(st);
	if (store_preflush(st, b, cause) == -1)
		return -1;
	st->gen++;
	st->nundo = 0;
	pending = st->pending;
	if (store_done(st, SID_SAVEPOINT, "savepoint", cause) == -1)
		return -1;
	if (store_run_write(st, b, now, &rid, cause) == -1)
		goto fail;
	for (i = 0; i < b->nlayers_meta; i++)
		if (store_layer_meta(st, rid, &b->layers_meta[i], cause) == -1)
			goto fail;
	for (i = 0; i < b->nseries; i++)
		if (store_series_apply(st, rid, &b->series[i], cause) == -1)
			goto fail;
	/* Without a transaction of the caller's, this savepoint is one. */
	if (!outer && store_flush_all(st, 0, cause) == -1)
		goto fail;
	if (store_done(st, SID_RELEASE, "release", cause) == -1)
		goto fail;
	st->nundo = 0;
	*run_id = rid;
	return 0;

fail:
	store_apply_undo(st, outer, pending);
	return -1;
}

int
store_finish_run(struct store *st, const char *run, const char *status,
    double now, int64_t *run_id, char **cause)
{
	sqlite3_stmt	*s = st->stmt[SID_RUN_FINISH];
	int64_t		 id = 0;
	int		 rc, found = 0;

	sqlite3_bind_text(s, 1, run, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 3, now);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		id = sqlite3_column_int64(s, 0);
		found = 1;
	}
	if (rc != SQLITE_DONE) {
		store_err(st, cause, "finish run");
		sqlite3_reset(s);
		return -1;
	}
	sqlite3_reset(s);
	if (!found)
		return 1;
	*run_id = id;
	return 0;
}
