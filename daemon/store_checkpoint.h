/* SPDX-License-Identifier: MIT */
/*
 * store_checkpoint: moves WAL checkpoints off the writer thread.  By default
 * SQLite checkpoints inside the COMMIT that crosses the WAL's size
 * threshold, which stalls every acknowledgement waiting on that commit
 * while whole pages are copied and the database file is synced.  Here
 * the writer only pokes a thread of our own, which runs PASSIVE
 * checkpoints on its own connection beside the writer.
 */
#ifndef GW_STORE_CHECKPOINT_H
#define GW_STORE_CHECKPOINT_H

struct checkpoint;
struct store;

/*
 * Start the checkpoint thread for the database at path and take over
 * checkpointing from st (the writer's connection), which must belong to
 * the calling thread.  NULL with *cause on failure.
 */
struct checkpoint	*checkpoint_start(const char *path, struct store *st,
			    char **cause);
/*
 * Writer thread, outside any transaction: when the WAL has grown past
 * what the thread's checkpoints can reset, checkpoint it on st
 * (this blocks for the copy) so that the next commit restarts the WAL.
 * Cheap when not needed.  NULL cp is fine.
 */
void			 checkpoint_catch_up(struct checkpoint *cp,
			    struct store *st);
/* Stop the thread after a last checkpoint.  NULL is fine. */
void			 checkpoint_stop(struct checkpoint *cp);

#endif
