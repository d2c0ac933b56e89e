/* SPDX-License-Identifier: MIT */
/*
 * store_int: what the store's own files (store*.c) share and nobody
 * else uses: struct store's body, its cache of runs and series with the
 * open tail of each series, and the statement tables every store*.c
 * file prepares once per connection.  Everything here belongs to the
 * writer thread that opened the store.
 *
 * Who does what: store.c opens, migrates (store_migrate.c) and runs the
 * transactions; store_series.c is the cache and a batch's points;
 * store_tails.c holds each series' newest points in memory and in the
 * tails table and seals them into chunks; store_alerts.c,
 * store_history.c, store_json.c and store_outbox.c are the other
 * writers and readers of the writer's connection.
 */
#ifndef GW_STORE_INT_H
#define GW_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "batch.h"
#include "chunk.h"
#include "store.h"

/*
 * A chunk row fills a page (16 KiB in a database gradwatchd made): its
 * blob takes at most STORE_CHUNK_BYTES(page size), so that with its
 * other columns and SQLite's cell and page headers the row fits one
 * leaf page whole, and it holds at most STORE_CHUNK_MAX points.  A row
 * of STORE_CHUNK_HALF bytes fits two to a page.  Rows are appended in
 * id order, each to the last page if it fits there, else to a new one:
 * rows of any other size leave the rest of their page empty.
 */
#define STORE_CHUNK_BYTES(page)	((size_t)(page) - 184)	/* 16,200 */
#define STORE_CHUNK_HALF(page)	((size_t)(page) / 2 - 152)	/* 8,040 */
#define STORE_CHUNK_MAX		8192
/*
 * A series' tail is sealed in the commit that fills a chunk row:
 * whole rows go to chunks, the rest stays as the tail.  Sealing deletes
 * the series' tails rows, which lie one to a page among every other
 * series' rows; so after a commit that sealed, a round
 * (store_tails_seal_round) also seals every tail past half a row, as
 * half rows.  Series fed together then seal together, and a page of
 * tails rows is emptied and freed at once instead of being rewritten
 * once for each series on it.
 */
/* Tail points held in memory, all series, before the biggest are sealed. */
#define STORE_TAIL_POINTS_MAX	((size_t)4 << 20)	/* 64 MiB */
/* Unwritten points, all series, before a flush in mid-transaction. */
#define STORE_PENDING_MAX	((size_t)1 << 20)
/* Cached entries before the cache is emptied between transactions. */
#define STORE_CACHE_MAX		((size_t)1 << 18)

/* Statements of store.c and store_series.c (store_sql in store.c). */
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
	SID_RUN_POINTS,
	SID_RUN_FINISH,
	SID_RUN_ANNOTATE,
	SID_SERIES_GET,
	SID_SERIES_INSERT,
	SID_SERIES_UPDATE,
	SID_SERIES_META,
	SID_CHUNK_OVERLAP,
	SID_CHUNK_INSERT,
	SID_CHUNK_UPDATE,
	SID_CHUNK_DELETE,
	SID_BLOCKS_PUT,
	SID_BLOCKS_DROP,
	SID_TAIL_LOAD,
	SID_TAIL_INSERT,
	SID_TAIL_DELETE,
	SID_QUARANTINE_CHUNK,
	SID_QUARANTINE_TAIL,
	SID_DELETE_TAIL_ROW,
	SID_COUNT
};

/* Statements of store_alerts.c (store_alerts_sql). */
enum store_aid {
	AID_FIRE,
	AID_UPDATE,
	AID_RESOLVE,
	AID_SYNC_RUN,
	AID_RESOLVE_STALL,
	AID_EACH_FIRING,
	AID_COUNT
};

/* Statements of store_history.c (store_history_sql). */
enum store_hid {
	HID_SERIES,
	HID_CHUNKS,
	HID_TAILS,
	HID_ACTIVE,
	HID_COUNT
};

/* Statements of store_backfill.c (store_backfill_sql), made when first used. */
enum store_bid {
	BID_CURSOR,
	BID_CURSOR_PUT,
	BID_CHUNKS,
	BID_DATA,
	BID_COUNT
};

/* Statements of store_json.c (store_json_sql). */
enum store_jid {
	JID_RUN,
	JID_ALERT,
	JID_FIRING,
	JID_COUNT
};

extern const char *const store_sql[SID_COUNT];
extern const char *const store_alerts_sql[AID_COUNT];
extern const char *const store_history_sql[HID_COUNT];
extern const char *const store_json_sql[JID_COUNT];
extern const char *const store_backfill_sql[BID_COUNT];

/* Whether a series' tail points are in memory. */
enum store_tail {
	STORE_TAIL_UNKNOWN,	/* not loaded: ask the tails table */
	STORE_TAIL_LOADED	/* tsteps/tvals hold every tail point */
};

/*
 * What the cache holds of a run or series, copied whole before a batch
 * changes it so that a failed batch can be undone.  For a series,
 * points, last_step and last_value count the unwritten points too; the
 * series row is brought up to date when they are flushed.
 *
 * The tail: the series' points in the tails table and those not yet
 * written, in the entry's arrays.  [toff, tflushed) are in tails rows
 * (trows of them), [tflushed, tn) are not written yet.  Inside a batch
 * or a flush that may be undone the arrays only grow and toff,
 * tflushed only move forward, so that restoring this struct restores
 * the tail; store_tail_compact() moves the live points down when no
 * undo can need the old ones.
 */
struct store_state {
	int		 stale;		/* reload from the database */
	int64_t		 id;
	int64_t		 points;	/* distinct steps stored */
	int64_t		 last_step;	/* the greatest, if points > 0 */
	double		 last_value;	/* its value */
	int64_t		 maxspan;	/* series.max_span */
	enum store_tail	 tail;
	size_t		 toff;
	size_t		 tflushed;
	size_t		 tn;
	int64_t		 trows;		/* tails rows of the series */
	size_t		 tbytes;	/* their blobs' bytes */
	/*
	 * How far tbytes overstated the live tail's chunk at the last
	 * seal that found no whole row in it: the next waits for that much
	 * more (each row repeats its header and first value).
	 */
	size_t		 tshort;
	int		 dirty;		/* the series row is behind */
	/*
	 * A run's entry: 1 when points and last_step are the run's own
	 * (learnt from its row when the entry was loaded, kept since).
	 */
	int		 run_known;
};

/*
 * A cached run (kind -1, run_id 0, name the key) or series.  A stale
 * entry has no tail points.
 */
struct store_ent {
	char			*name;
	int64_t			 run_id;
	int			 kind;
	int			 queued;	/* in st->dirty */
	uint64_t		 hash;
	uint64_t		 gen;		/* last batch to touch it */
	struct store_state	 s;
	int64_t			*tsteps;	/* the tail, see store_state */
	double			*tvals;
	size_t			 tcap;
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

/* A chunk or tail row that does not decode, bound for quarantine. */
struct store_bad {
	int64_t		 id;
	int64_t		 n;		/* its n column */
	char		*why;
};

struct store {
	sqlite3			*db;
	sqlite3_stmt		*stmt[SID_COUNT];
	sqlite3_stmt		*alerts[AID_COUNT];
	sqlite3_stmt		*history[HID_COUNT];
	sqlite3_stmt		*json[JID_COUNT];
	sqlite3_stmt		*backfill[BID_COUNT];	/* NULL until used */
	void			(*walhook)(void *, int);	/* store_wal_hook */
	void			*walarg;

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
	size_t			 pending;	/* unwritten tail points, all series */
	size_t			 tpoints;	/* tail points in memory, all series */
	size_t			 tpoints_max;	/* STORE_TAIL_POINTS_MAX; tests lower it */
	size_t			 chunk_bytes;	/* STORE_CHUNK_BYTES of the file's pages */
	size_t			 chunk_half;	/* STORE_CHUNK_HALF of them */
	int			 sealed_now;	/* a tail sealed since the last round */
	int64_t			 added;		/* distinct points the batch added */

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
	struct store_bad	*bad;		/* damaged rows met by a read */
	size_t			 nbad;
	size_t			 badcap;
	struct chunk_buf	 enc;		/* an encoded chunk */
	struct chunk_buf	 blocks;	/* its block summaries */
	sqlite3_stmt		*remote_log;	/* NULL: no remote-write */
	/*
	 * The batch being applied only appends to its run: every series'
	 * steps ascending, all above the run's earlier steps (see
	 * store_remote_row).
	 */
	int			 plain;
	int64_t			 log_id;	/* its remote_log row; 0: none */
};

/* store_sql.c: plumbing on the writer's connection. */
/* A cause "store: what: <SQLite's message>"; returns -1. */
int	 store_err(struct store *st, char **cause, const char *what);
/* Step a statement that returns no row, then reset it; -1 and *cause. */
int	 store_done(struct store *st, sqlite3_stmt *s, const char *what,
	    char **cause);
/* Like store_done(), for cleanup paths that have a cause already. */
void	 store_done_quiet(struct store *st, sqlite3_stmt *s);
int	 store_exec(struct store *st, const char *sql, char **cause);
void	 store_buf_reserve(struct store_buf *buf, size_t n);
void	 store_buf_free(struct store_buf *buf);
/* Prepare n statements sql[] into stmt[]; -1 and *cause on failure. */
int	 store_prepare_all(struct store *st, const char *const *sql,
	    sqlite3_stmt **stmt, size_t n, char **cause);

/* store_migrate.c: bring the schema to this binary's version. */
int	 store_migrate(struct store *st, const char *path, char **cause);

/* store_series.c: the cache, a batch's series, runs' counters. */
void		 store_cache_clear(struct store *st);
struct store_ent *store_cache_get(struct store *st, int64_t run_id,
		    int kind, const char *name);
struct store_ent *store_cache_find(struct store *st, int64_t run_id,
		    int kind, const char *name);
int		 store_series_apply(struct store *st, int64_t run_id,
		    const struct batch_series *bs, char **cause);
int		 store_layer_meta(struct store *st, int64_t run_id,
		    const struct batch_layer_meta *lm, char **cause);
int		 store_flush_all(struct store *st, int atomic, char **cause);

/*
 * 1 if a series of kind (enum series_kind; -1 unknown) is drawn as a
 * line, so its block summaries carry extremes (chunk.h).
 */
static inline int
store_kind_extremes(int kind)
{
	return kind >= 0 && !series_kind_is_tensor((enum series_kind)kind);
}

/* store_rows.c: a series' chunk rows and series row. */
void	 store_queue(struct store *st, struct store_ent *e);
int	 store_series_row_write(struct store *st, struct store_ent *e,
	    char **cause);
int	 store_chunks_read(struct store *st, sqlite3_stmt *s, char **cause);
/* Bind a summary to ?col..?col+4: min, its step, max, its step, non-finite. */
struct chunk_summary;
void	 store_summary_bind(sqlite3_stmt *s, int col,
	    const struct chunk_summary *sum);
int	 store_chunks_write(struct store *st, struct store_ent *e,
	    const int64_t *steps, const double *vals, size_t n, char **cause);
/*
 * Encode into st->enc the longest prefix of the n points whose chunk
 * blob takes at most max_bytes and STORE_CHUNK_MAX points: its count.
 */
size_t	 store_chunk_fit(struct store *st, const int64_t *steps,
	    const double *vals, size_t n, size_t max_bytes);
/*
 * Put st->enc, the chunk of the n points, as row reuse (when > 0) or a
 * new chunk row of e, with its block summaries; e's max_span grows.
 */
int	 store_chunk_put(struct store *st, struct store_ent *e, int64_t reuse,
	    const int64_t *steps, const double *vals, size_t n, char **cause);
/*
 * Write chunk id's chunk_blocks row (last: its last step) from
 * st->blocks: put it, or drop a stale one when st->blocks is empty
 * (was_there: the chunk may have one).
 */
int	 store_blocks_write(struct store *st, int64_t id, int64_t last,
	    int was_there, char **cause);
/* Delete chunk row id with its block summaries. */
int	 store_chunk_delete(struct store *st, int64_t id, char **cause);
void	 store_normalize(struct store *st, const int64_t *steps,
	    const double *vals, size_t n, struct store_buf *out,
	    const int64_t **rsteps, const double **rvals, size_t *rn);
void	 store_merge(struct store *st, const int64_t *os, const double *ov,
	    size_t on, const int64_t *ns, const double *nv, size_t nn);
void	 store_bad_add(struct store *st, int64_t id, int64_t n, char *why);
int	 store_bad_quarantine(struct store *st, struct store_ent *e,
	    int tails, char **cause);

/* store_remote.c: a batch's remote_log row (when st->remote_log). */
int	 store_remote_log(struct store *st, int64_t run_id, int64_t first,
	    int64_t last, int64_t n, double now, char **cause);

/* store_tails.c: the open tail of each series. */
int	 store_tail_load(struct store *st, struct store_ent *e, char **cause);
void	 store_tail_push(struct store *st, struct store_ent *e,
	    const int64_t *steps, const double *vals, size_t n);
/*
 * Points (ascending, none stored before) of which the first is after
 * e's first tail point and not after its last step: merged into the
 * tail without rewriting a row.  1 if taken, 0 when not (no tail, a
 * step before it or one it holds), -1 with *cause on error.
 */
int	 store_tail_insert(struct store *st, struct store_ent *e,
	    const int64_t *ns, const double *nv, size_t nn, char **cause);
int	 store_tail_seal(struct store *st, struct store_ent *e, char **cause);
int	 store_tail_flush(struct store *st, struct store_ent *e, char **cause);
void	 store_tail_compact(struct store *st, struct store_ent *e);
void	 store_tail_free(struct store *st, struct store_ent *e);
int	 store_tails_seal_round(struct store *st);

#endif
