/* SPDX-License-Identifier: MIT */
/*
 * walsync: makes commits durable off the writer thread.  The store runs
 * SQLite with synchronous=NORMAL, so a COMMIT writes its WAL frames but
 * does not wait for the disk; the writer hands each committed round's
 * jobs to this thread, which calls fdatasync() on the WAL file and only
 * then answers them.  That is the one sync synchronous=FULL would have
 * made inside COMMIT (in WAL mode FULL and NORMAL differ by nothing
 * else), so a 200 still means the points survive a power loss, but the
 * writer builds the next round while the disk flushes the last one, and
 * one sync covers every round committed meanwhile.
 */
#ifndef GW_WALSYNC_H
#define GW_WALSYNC_H

#include <stddef.h>

struct walsync;
struct writer_job;

/*
 * Start the thread for the WAL file at wal_path (SQLite's
 * sqlite3_filename_wal() of the database).  NULL with *cause when it
 * cannot be opened; a WAL not created yet is opened at the first sync.
 */
struct walsync	*walsync_start(const char *wal_path, char **cause);
/*
 * Answer jobs[0..n) (their done callbacks) once everything committed so
 * far is on disk; a job whose sync failed is answered 503 instead.
 */
void		 walsync_submit(struct walsync *ws, struct writer_job **jobs,
		    size_t n);
/* Sync and answer everything submitted, then stop.  NULL is fine. */
void		 walsync_stop(struct walsync *ws);

#endif
