/* SPDX-License-Identifier: MIT */
/*
 * checkpoint: moves WAL checkpoints off the writer thread.  By default
 * SQLite checkpoints inside the COMMIT that crosses the WAL's size
 * threshold, which stalls every acknowledgement waiting on that commit
 * while whole pages are copied and the database file is synced.  Here
 * the writer only pokes a thread of our own, which runs PASSIVE
 * checkpoints on its own connection beside the writer.
 */
#ifndef GW_CHECKPOINT_H
#define GW_CHECKPOINT_H

#include <sqlite3.h>

struct checkpoint;

/*
 * Start the checkpoint thread for the database at path and take over
 * checkpointing from writer_db (its connection), which must belong to
 * the calling thread.  NULL with *cause on failure.
 */
struct checkpoint	*checkpoint_start(const char *path, sqlite3 *writer_db,
			    char **cause);
/*
 * Writer thread, outside any transaction: when the WAL has grown past
 * what the thread's checkpoints can reset, checkpoint it on writer_db
 * (this blocks for the copy) so that the next commit restarts the WAL.
 * Cheap when not needed.  NULL cp is fine.
 */
void			 checkpoint_catch_up(struct checkpoint *cp,
			    sqlite3 *writer_db);
/* Stop the thread after a last checkpoint.  NULL is fine. */
void			 checkpoint_stop(struct checkpoint *cp);

#endif
