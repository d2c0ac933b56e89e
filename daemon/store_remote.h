/* SPDX-License-Identifier: MIT */
/*
 * store_remote: the writer's side of remote-write
 * (schema/0004_remote_write.sql).  Once made, every batch the store
 * applies adds a remote_log row in its own savepoint (store.c calls
 * store_remote_log), so a row exists exactly when its points were
 * committed; the senders' progress (remote.h) is written back here as
 * each target's cursor, and the rows every target was sent through are
 * deleted.  Writer thread only, on the writer's connection.
 */
#ifndef GW_STORE_REMOTE_H
#define GW_STORE_REMOTE_H

#include <stddef.h>
#include <stdint.h>

struct remote_target;
struct store;
struct store_remote;

/*
 * Log st's batches from now on, for the n targets t (borrowed; they
 * must outlive it).  NULL and *cause on failure.
 */
struct store_remote	*store_remote_new(struct store *st,
			    const struct remote_target *t, size_t n,
			    char **cause);
/* Stop logging and free sr (before store_close).  NULL is fine. */
void			 store_remote_free(struct store_remote *sr);
/*
 * Inside a transaction: target i was sent through log row acked[i];
 * write the cursors that moved, then delete the rows every target was
 * sent through.  0, or -1 with *cause (the marks are tried again).
 */
int			 store_remote_sync(struct store_remote *sr,
			    const int64_t *acked, double now, char **cause);

#endif
