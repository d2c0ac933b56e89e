/* SPDX-License-Identifier: MIT */
/*
 * pool: a fixed set of worker threads running jobs from a bounded
 * queue.  Each worker has its own state, made by the init callback on
 * that thread (the daemon gives each worker its own read-only SQLite
 * connection), so jobs may block on CPU or disk without holding up the
 * HTTP I/O threads.  Includes no project headers but queue.h.
 */
#ifndef GW_POOL_H
#define GW_POOL_H

#include <stddef.h>

struct pool;

/* Runs on a worker; state is that worker's own. */
typedef void	(*pool_job_cb)(void *state, void *arg);
/* Make a worker's state on the worker thread (may return NULL). */
typedef void	*(*pool_init_cb)(void *ctx);
/* Free a worker's state on the worker thread. */
typedef void	(*pool_fini_cb)(void *state);

/* Caller-allocated; must stay valid until its callback has run. */
struct pool_job {
	pool_job_cb	 run;
	void		*arg;
};

/* Start n workers; max_jobs bounds the jobs waiting. */
struct pool	*pool_start(unsigned int n, size_t max_jobs, pool_init_cb init,
		    pool_fini_cb fini, void *ctx);
/* Queue job.  0, or -1 when the queue is full or the pool stopping. */
int		 pool_submit(struct pool *p, struct pool_job *job);
/*
 * Refuse new jobs, run every queued one, then join the workers.  After
 * it pool_submit() keeps answering -1 until pool_free().  NULL is fine.
 */
void		 pool_stop(struct pool *p);
/* Free a stopped pool.  NULL is fine. */
void		 pool_free(struct pool *p);

#endif
