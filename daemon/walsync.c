/* SPDX-License-Identifier: MIT */
/*
 * walsync: the durability thread; see walsync.h.  The WAL is opened
 * once and kept open: SQLite keeps the same file (the same inode) while
 * the writer's connection is open, truncating it in place, and goes on
 * writing to it even if its name is removed, so the descriptor, not the
 * name, is what must be synced.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "query.h"
#include "walsync.h"
#include "wire_json.h"
#include "writer.h"
#include "xmalloc.h"
#include "thread_name.h"

struct walsync {
	char			*path;		/* the WAL file */
	int			 fd;		/* sync thread only */
	pthread_t		 thread;
	pthread_mutex_t		 lock;
	pthread_cond_t		 wake;
	struct writer_job	**jobs;		/* waiting for a sync; lock */
	size_t			 njobs, capjobs;
	int			 stopping;	/* lock */
};

/* Open the WAL file unless open; -1 with errno. */
static int
walsync_open(struct walsync *ws)
{
	if (ws->fd != -1)
		return 0;
	/*
	 * Linux syncs a file through any descriptor, read-only too;
	 * O_NONBLOCK so that no special file can hang the open.
	 */
	ws->fd = open(ws->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	return ws->fd == -1 ? -1 : 0;
}

/* Sync the WAL; 0, or -1 with the cause logged. */
static int
walsync_sync(struct walsync *ws)
{
	if (walsync_open(ws) == -1) {
		log_warn("walsync: %s", ws->path);
		return -1;
	}
	if (fdatasync(ws->fd) == -1) {
		log_warn("walsync: fdatasync %s", ws->path);
		return -1;
	}
	return 0;
}

static void
walsync_fail(struct writer_job *job)
{
	free(job->body);
	job->status = wire_status("overloaded");
	job->body = wire_error_body("overloaded", "the database could not "
	    "be synced to disk; retry the request");
}

static void *
walsync_main(void *arg)
{
	struct walsync		*ws = arg;
	struct writer_job	**jobs = NULL;
	size_t			 n, cap = 0, i;
	int			 stopping, ok;

	thread_name("gw-walsync");
	for (;;) {
		pthread_mutex_lock(&ws->lock);
		while (ws->njobs == 0 && !ws->stopping)
			pthread_cond_wait(&ws->wake, &ws->lock);
		/* Swap lists: the writer fills the other one meanwhile. */
		n = ws->njobs;
		stopping = ws->stopping;
		if (n > 0) {
			struct writer_job	**t = jobs;
			size_t			 tc = cap;

			jobs = ws->jobs;
			cap = ws->capjobs;
			ws->jobs = t;
			ws->capjobs = tc;
			ws->njobs = 0;
		}
		pthread_mutex_unlock(&ws->lock);
		if (n == 0 && stopping)
			break;
		ok = walsync_sync(ws) == 0;
		for (i = 0; i < n; i++) {
			if (!ok && jobs[i]->status == 200)
				walsync_fail(jobs[i]);
			jobs[i]->done(jobs[i], jobs[i]->done_arg);
		}
	}
	free(jobs);
	return NULL;
}

struct walsync *
walsync_start(const char *wal_path, char **cause)
{
	struct walsync	*ws;
	int		 rc;

	ws = xcalloc(1, sizeof *ws);
	ws->path = xstrdup(wal_path);
	ws->fd = -1;
	/* No WAL yet (a fresh database) is fine: the first sync opens it. */
	if (walsync_open(ws) == -1 && errno != ENOENT) {
		xasprintf(cause, "walsync: %s: %s", ws->path, strerror(errno));
		goto fail;
	}
	pthread_mutex_init(&ws->lock, NULL);
	pthread_cond_init(&ws->wake, NULL);
	if ((rc = pthread_create(&ws->thread, NULL, walsync_main, ws)) != 0) {
		xasprintf(cause, "walsync: pthread_create: %s", strerror(rc));
		pthread_mutex_destroy(&ws->lock);
		pthread_cond_destroy(&ws->wake);
		goto fail;
	}
	return ws;

fail:
	if (ws->fd != -1)
		close(ws->fd);
	free(ws->path);
	free(ws);
	return NULL;
}

void
walsync_submit(struct walsync *ws, struct writer_job **jobs, size_t n)
{
	pthread_mutex_lock(&ws->lock);
	if (ws->njobs + n > ws->capjobs) {
		while (ws->njobs + n > ws->capjobs)
			ws->capjobs = ws->capjobs == 0 ? 64 : ws->capjobs * 2;
		ws->jobs = xreallocarray(ws->jobs, ws->capjobs,
		    sizeof *ws->jobs);
	}
	memcpy(ws->jobs + ws->njobs, jobs, n * sizeof *jobs);
	ws->njobs += n;
	pthread_cond_signal(&ws->wake);
	pthread_mutex_unlock(&ws->lock);
}

void
walsync_stop(struct walsync *ws)
{
	if (ws == NULL)
		return;
	pthread_mutex_lock(&ws->lock);
	ws->stopping = 1;
	pthread_cond_signal(&ws->wake);
	pthread_mutex_unlock(&ws->lock);
	pthread_join(ws->thread, NULL);
	pthread_mutex_destroy(&ws->lock);
	pthread_cond_destroy(&ws->wake);
	if (ws->fd != -1)
		close(ws->fd);
	free(ws->jobs);
	free(ws->path);
	free(ws);
}
