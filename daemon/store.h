/* SPDX-License-Identifier: MIT */
/*
 * store: the daemon's only SQLite writer.  Opens the database, applies
 * the embedded migrations (schema/NNNN_*.sql, tracked in PRAGMA
 * user_version, with a C step where a version needs one), and writes
 * batches: each commit appends every series' new points as one small
 * row of the tails table, and a series' tail rows are sealed into one
 * compressed chunk once they hold enough points (schema/0003).  Every
 * statement the writer's connection runs lives in a store*.c file,
 * prepared once: alerts (store_alerts.h), the restore reads
 * (store_history.h), the answers' JSON (store_json.h), the outbox
 * (store_outbox.h).  A struct store belongs to the writer thread: every
 * function here must be called from the thread that opened it.
 *
 * A group commit is store_begin(), any number of store_apply(),
 * store_finish_run() and store_annotate_run() calls (each atomic on its
 * own: a savepoint, or a single statement), then store_commit() or
 * store_rollback().
 */
#ifndef GW_STORE_H
#define GW_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"

struct store;

/* The schema version this binary writes (the number of migrations). */
int		 store_schema_version(void);

/*
 * Open (creating if needed) and migrate path; ":memory:" works.  Sets
 * WAL mode and synchronous=NORMAL: a commit survives a crash of the
 * process, and of the machine once its WAL is synced (the writer's
 * walsync does that before answering).  Refuses a
 * database whose user_version is newer than this binary's.  NULL and
 * an allocated *cause on failure.
 */
struct store	*store_open(const char *path, char **cause);
/* Close st, finalizing every statement.  NULL and half-opened are fine. */
void		 store_close(struct store *st);
/*
 * The WAL file's path, for walsync; NULL for an in-memory database.
 * Owned by st.
 */
const char	*store_wal_path(struct store *st);
/*
 * Hand WAL checkpoints over to the caller (store_checkpoint.h): SQLite stops
 * checkpointing inside COMMIT, and after each commit hook(arg, pages)
 * is called, inside it, with the WAL's size in pages.  The hook must
 * not use st.
 */
void		 store_wal_hook(struct store *st,
		    void (*hook)(void *arg, int pages), void *arg);
/*
 * Outside a transaction: a PASSIVE checkpoint on the writer's
 * connection; *wal and *done are the WAL's frames and those copied.
 * 0 (also when a reader kept it from finishing), or -1 and *cause.
 */
int		 store_checkpoint(struct store *st, int *wal, int *done,
		    char **cause);

/*
 * Between transactions, when there is nothing else to do: put the block
 * summaries of up to max more chunks written before they existed, in a
 * transaction of its own (store_backfill.c).  *done is 1 once no chunk
 * is left to look at.  0, or -1 with *cause (nothing changed).
 */
int		 store_backfill_step(struct store *st, size_t max, int *done,
		    char **cause);
int		 store_begin(struct store *st, char **cause);
/*
 * Commit the open transaction; -1 and *cause if it failed (rolled back).
 * After a commit it may seal tails into chunks in a second transaction,
 * whose failure is logged and changes nothing committed.
 */
int		 store_commit(struct store *st, char **cause);
/* Roll back the open transaction and forget cached state it touched. */
void		 store_rollback(struct store *st);

/*
 * Outside a transaction: forget what the cache holds of the runs
 * run_ids[0..n): their ids, counters and open tails in memory.  The
 * database has all of it (a commit writes every change), and their next
 * batch reads it back.
 */
void		 store_cache_evict(struct store *st, const int64_t *run_ids,
		    size_t n);
/* The runs and series cached, and the open tails' points in memory. */
void		 store_cache_stats(struct store *st, size_t *entries,
		    size_t *tail_points);

/*
 * Write batch b: create or update its run (meta, project, config, layer
 * metadata, last_seen = now, first/last step, dropped), create its
 * series, and store every point, replacing any value stored before for
 * the same (run, series, step).  The run's and its series' points count
 * the distinct steps stored: a step sent again is not counted again.
 * Inside an open transaction, b joins it; without one, b is a
 * transaction of its own.  All or nothing: on failure nothing of b
 * remains and -1 is returned with *cause.  On success *run_id is the
 * run's id.
 */
int		 store_apply(struct store *st, const struct batch *b,
		    double now, int64_t *run_id, char **cause);
/*
 * After a store_apply() that succeeded: the id of the remote_log row it
 * wrote (0: none, without remote-write or points), and in *plain
 * whether the batch only appended to its run (each series' steps
 * ascending and distinct, all above every step the run had), so that
 * the batch as it is holds exactly what the row names (remote.h then
 * sends it from memory).
 */
int64_t		 store_remote_row(const struct store *st, int *plain);

/*
 * Inside an open transaction, set run's status to "finished" or
 * "failed".  Returns 0, 1 if there is no such run, -1 with *cause on
 * error.  *run_id is set on success.
 */
int		 store_finish_run(struct store *st, const char *run,
		    const char *status, double now, int64_t *run_id,
		    char **cause);
/*
 * Inside an open transaction, set run's tags (a compact JSON array) and
 * note, each left as it is when NULL; neither is checked here (runmeta.c
 * checks them).  Returns 0, 1 if there is no such run, -1 with *cause on
 * error.  *run_id is set on success.
 */
int		 store_annotate_run(struct store *st, const char *run,
		    const char *tags, const char *note, int64_t *run_id,
		    char **cause);

#endif
