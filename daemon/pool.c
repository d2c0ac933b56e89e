/* SPDX-License-Identifier: MIT */
/* pool: worker threads over a bounded queue; see pool.h. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pool.h"
#include "queue.h"
#include "xmalloc.h"
#include "thread_name.h"

struct pool {
	struct queue	*q;
	pthread_t	*threads;
	unsigned int	 n;
	int		 stopped;
	pool_init_cb	 init;
	pool_fini_cb	 fini;
	void		*ctx;
};

static void *
pool_main(void *arg)
{
	struct pool	*p = arg;
	struct pool_job	*job;
	void		*state;

	thread_name("gw-reader");
	state = p->init != NULL ? p->init(p->ctx) : NULL;
	while (queue_pop_many(p->q, (void **)&job, 1, 0) == 1)
		job->run(state, job->arg);
	if (p->fini != NULL)
		p->fini(state);
	return NULL;
}

struct pool *
pool_start(unsigned int n, size_t max_jobs, pool_init_cb init,
    pool_fini_cb fini, void *ctx)
{
	struct pool	*p;
	unsigned int	 i;
	int		 rc;

	p = xcalloc(1, sizeof *p);
	p->q = queue_new(max_jobs, max_jobs);
	p->threads = xcalloc(n, sizeof *p->threads);
	p->n = n;
	p->init = init;
	p->fini = fini;
	p->ctx = ctx;
	for (i = 0; i < n; i++)
		if ((rc = pthread_create(&p->threads[i], NULL, pool_main,
		    p)) != 0)
			fatalx("pool: pthread_create: %s", strerror(rc));
	return p;
}

int
pool_submit(struct pool *p, struct pool_job *job)
{
	return queue_push(p->q, job, 1);
}

void
pool_stop(struct pool *p)
{
	unsigned int	i;

	if (p == NULL || p->stopped)
		return;
	queue_close(p->q);
	for (i = 0; i < p->n; i++)
		pthread_join(p->threads[i], NULL);
	p->stopped = 1;
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pool_stop(p);
	queue_free(p->q);
	free(p->threads);
	free(p);
}
