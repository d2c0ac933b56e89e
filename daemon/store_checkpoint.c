/* SPDX-License-Identifier: MIT */
/*
 * checkpoint: a thread with its own SQLite connection that checkpoints
 * the WAL when the writer's commits have grown it (the writer's WAL
 * hook pokes it), and on a timer.  PASSIVE checkpoints never block the
 * writer or the readers; the WAL restarts from its beginning once a
 * checkpoint has caught up, so its file stays at a steady size.
 *
 * A writer that never pauses keeps a checkpoint on another connection
 * from ever catching up (each commit appends while it copies), and the
 * WAL would grow without end; so past CHECKPOINT_CATCH_UP_PAGES the
 * writer runs one PASSIVE checkpoint itself between two transactions
 * (after the thread's, if one is running: SQLite runs one at a time),
 * which does catch up, and its next commit starts the WAL over.
 */
#include <stdatomic.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "now.h"
#include "store_checkpoint.h"
#include "store_int.h"
#include "log.h"
#include "xmalloc.h"
#include "thread_name.h"

#define CHECKPOINT_PAGES	2000	/* WAL frames that trigger a checkpoint */
#define CHECKPOINT_IDLE_SEC	5	/* checkpoint at least this often */
/* WAL frames past which the writer catches up itself (128 MiB here). */
#define CHECKPOINT_CATCH_UP_PAGES	(4 * CHECKPOINT_PAGES)

struct checkpoint {
	sqlite3		*db;		/* checkpoint thread only */
	pthread_t	 thread;
	pthread_mutex_t	 lock;
	pthread_cond_t	 wake;
	pthread_mutex_t	 running;	/* held while a checkpoint runs */
	int		 pending;	/* {lock} the writer asked for one */
	int		 stopping;	/* {lock} */
	_Atomic int	 wal_pages;	/* the WAL's frames at the last commit */
};

/* Writer thread, inside COMMIT: only note that a checkpoint is due. */
static int
checkpoint_wal_hook_cb(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct checkpoint	*cp = arg;

	(void)db;
	(void)name;
	atomic_store_explicit(&cp->wal_pages, pages, memory_order_relaxed);
	if (pages < CHECKPOINT_PAGES)
		return SQLITE_OK;
	pthread_mutex_lock(&cp->lock);
	if (!cp->pending) {
		cp->pending = 1;
		pthread_cond_signal(&cp->wake);
	}
	pthread_mutex_unlock(&cp->lock);
	return SQLITE_OK;
}

static void
checkpoint_run(struct checkpoint *cp, int mode)
{
	int	wal = 0, done = 0, rc;

	rc = sqlite3_wal_checkpoint_v2(cp->db, NULL, mode, &wal, &done);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		log_warnx("checkpoint: %s", sqlite3_errmsg(cp->db));
	else
		log_debug("checkpoint: %d of %d frames", done, wal);
}

static void *
checkpoint_main(void *arg)
{
	struct checkpoint	*cp = arg;
	struct timespec		 until;

	thread_name("gw-checkpoint");
	pthread_mutex_lock(&cp->lock);
	while (!cp->stopping) {
		if (!cp->pending) {
			now_deadline(&until, CHECKPOINT_IDLE_SEC * 1000);
			pthread_cond_timedwait(&cp->wake, &cp->lock, &until);
			if (cp->stopping)
				break;
		}
		cp->pending = 0;
		pthread_mutex_unlock(&cp->lock);
		pthread_mutex_lock(&cp->running);
		checkpoint_run(cp, SQLITE_CHECKPOINT_PASSIVE);
		pthread_mutex_unlock(&cp->running);
		pthread_mutex_lock(&cp->lock);
	}
	pthread_mutex_unlock(&cp->lock);
	return NULL;
}

struct checkpoint *
checkpoint_start(const char *path, struct store *st, char **cause)
{
	struct checkpoint	*cp;
	int			 rc;

	cp = xcalloc(1, sizeof *cp);
	if (sqlite3_open_v2(path, &cp->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		xasprintf(cause, "checkpoint: %s: %s", path,
		    cp->db == NULL ? "out of memory" : sqlite3_errmsg(cp->db));
		sqlite3_close(cp->db);
		free(cp);
		return NULL;
	}
	sqlite3_busy_timeout(cp->db, 1000);
	/* A fresh connection reads the header (and so sees WAL mode) lazily. */
	if (sqlite3_exec(cp->db, "PRAGMA journal_mode = WAL", NULL, NULL,
	    NULL) != SQLITE_OK) {
		xasprintf(cause, "checkpoint: %s: %s", path,
		    sqlite3_errmsg(cp->db));
		sqlite3_close(cp->db);
		free(cp);
		return NULL;
	}
	pthread_mutex_init(&cp->lock, NULL);
	pthread_mutex_init(&cp->running, NULL);
	pthread_cond_init(&cp->wake, NULL);
	/* The writer never checkpoints by itself again; it pokes us. */
	sqlite3_wal_autocheckpoint(st->db, 0);
	sqlite3_wal_hook(st->db, checkpoint_wal_hook_cb, cp);
	if ((rc = pthread_create(&cp->thread, NULL, checkpoint_main, cp)) != 0)
		fatalx("checkpoint: pthread_create: %s", strerror(rc));
	return cp;
}

void
checkpoint_catch_up(struct checkpoint *cp, struct store *st)
{
	int	wal = 0, done = 0, rc;

	if (cp == NULL || atomic_load_explicit(&cp->wal_pages,
	    memory_order_relaxed) < CHECKPOINT_CATCH_UP_PAGES)
		return;
	pthread_mutex_lock(&cp->running);
	rc = sqlite3_wal_checkpoint_v2(st->db, NULL,
	    SQLITE_CHECKPOINT_PASSIVE, &wal, &done);
	pthread_mutex_unlock(&cp->running);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		log_warnx("checkpoint: %s", sqlite3_errmsg(st->db));
	else
		log_debug("checkpoint: writer caught up, %d of %d frames",
		    done, wal);
	atomic_store_explicit(&cp->wal_pages, 0, memory_order_relaxed);
}

void
checkpoint_stop(struct checkpoint *cp)
{
	if (cp == NULL)
		return;
	pthread_mutex_lock(&cp->lock);
	cp->stopping = 1;
	pthread_cond_signal(&cp->wake);
	pthread_mutex_unlock(&cp->lock);
	pthread_join(cp->thread, NULL);
	checkpoint_run(cp, SQLITE_CHECKPOINT_TRUNCATE);
	sqlite3_close(cp->db);
	pthread_cond_destroy(&cp->wake);
	pthread_mutex_destroy(&cp->lock);
	pthread_mutex_destroy(&cp->running);
	free(cp);
}
