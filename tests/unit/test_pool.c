/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of pool.c: every submitted job runs exactly once; each
 * worker makes its own state with init and frees it with fini on its
 * own thread, named gw-reader; the workers run jobs in parallel; a full
 * queue refuses a job at once; pool_stop refuses new jobs, still runs
 * every queued one, and pool_submit keeps refusing after it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <cmocka.h>

#include "pool.h"

static pthread_mutex_t	lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	cond = PTHREAD_COND_INITIALIZER;

static double
mono(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_ms(long ms)
{
	struct timespec	ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* The absolute deadline ms from now, for pthread_cond_timedwait. */
static struct timespec
deadline(long ms)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* ---- every job once, and each worker's own state ---------------------- */

struct worker_state {
	pthread_t	 self;
	char		 name[17];
	unsigned int	 jobs;
	int		 magic;
};

#define STATE_MAGIC	0x5eed
#define MAX_WORKERS	8

struct census {
	unsigned int		 inits, finis, bad_fini;
	struct worker_state	*states[MAX_WORKERS];
	unsigned int		 jobs_seen;	/* summed in fini */
};

static void
name_of_thread(char name[17])
{
	memset(name, 0, 17);
#ifdef __linux__
	(void)prctl(PR_GET_NAME, name, 0, 0, 0);
#endif
}

static void *
census_init(void *ctx)
{
	struct census		*c = ctx;
	struct worker_state	*ws;

	ws = calloc(1, sizeof *ws);
	if (ws == NULL)
		abort();
	ws->self = pthread_self();
	ws->magic = STATE_MAGIC;
	name_of_thread(ws->name);
	pthread_mutex_lock(&lock);
	if (c->inits < MAX_WORKERS)
		c->states[c->inits] = ws;
	c->inits++;
	pthread_mutex_unlock(&lock);
	return ws;
}

static struct census	*census_now;	/* fini has no ctx */

static void
census_fini(void *state)
{
	struct worker_state	*ws = state;
	struct census		*c = census_now;

	pthread_mutex_lock(&lock);
	c->finis++;
	if (ws == NULL || ws->magic != STATE_MAGIC ||
	    !pthread_equal(ws->self, pthread_self()))
		c->bad_fini++;
	else
		c->jobs_seen += ws->jobs;
	pthread_mutex_unlock(&lock);
	if (ws != NULL)
		ws->magic = 0;
	/* freed by the test, which still reads the names */
}

struct count_job {
	struct pool_job	 job;
	unsigned int	 runs;
	int		 wrong_state;	/* not its worker's own */
	char		 name[17];	/* the thread it ran on */
};

static void
count_run(void *state, void *arg)
{
	struct worker_state	*ws = state;
	struct count_job	*cj = arg;

	pthread_mutex_lock(&lock);
	cj->runs++;
	pthread_mutex_unlock(&lock);
	if (ws == NULL || ws->magic != STATE_MAGIC ||
	    !pthread_equal(ws->self, pthread_self()))
		cj->wrong_state = 1;
	else
		ws->jobs++;	/* only this worker touches its state */
	name_of_thread(cj->name);
}

static void
test_each_job_once(void **state)
{
	enum { NJOBS = 500, NWORKERS = 4 };
	struct census		 c;
	struct count_job	*jobs;
	struct pool		*p;
	unsigned int		 i, j, accepted = 0;

	(void)state;
	memset(&c, 0, sizeof c);
	census_now = &c;
	jobs = calloc(NJOBS, sizeof *jobs);
	assert_non_null(jobs);
	p = pool_start(NWORKERS, 64, census_init, census_fini, &c);
	assert_non_null(p);
	for (i = 0; i < NJOBS; i++) {
		jobs[i].job = (struct pool_job){ count_run, &jobs[i] };
		/* The queue holds 64: a refusal says wait, not lost. */
		while (pool_submit(p, &jobs[i].job) == -1)
			sleep_ms(1);
		accepted++;
	}
	pool_stop(p);
	assert_int_equal(accepted, NJOBS);
	for (i = 0; i < NJOBS; i++) {
		if (jobs[i].runs != 1)
			fail_msg("job %u ran %u times", i, jobs[i].runs);
		assert_false(jobs[i].wrong_state);
#ifdef __linux__
		assert_string_equal(jobs[i].name, "gw-reader");
#endif
	}
	assert_int_equal(c.inits, NWORKERS);
	assert_int_equal(c.finis, NWORKERS);
	assert_int_equal(c.bad_fini, 0);
	assert_int_equal(c.jobs_seen, NJOBS);
	for (i = 0; i < NWORKERS; i++) {
		assert_non_null(c.states[i]);
#ifdef __linux__
		assert_string_equal(c.states[i]->name, "gw-reader");
#endif
		assert_false(pthread_equal(c.states[i]->self, pthread_self()));
		/* Each worker has a thread (and a state) of its own. */
		for (j = 0; j < i; j++)
			assert_false(pthread_equal(c.states[i]->self,
			    c.states[j]->self));
	}
	for (i = 0; i < NWORKERS; i++)
		free(c.states[i]);
	pool_free(p);
	free(jobs);
	census_now = NULL;
}

/* Without init and fini, jobs see a NULL state. */
static void
null_state_run(void *state, void *arg)
{
	int	*seen = arg;

	pthread_mutex_lock(&lock);
	*seen = state == NULL ? 1 : 2;
	pthread_mutex_unlock(&lock);
}

static void
test_no_init(void **state)
{
	struct pool_job	 job;
	struct pool	*p;
	int		 seen = 0;

	(void)state;
	p = pool_start(2, 4, NULL, NULL, NULL);
	job = (struct pool_job){ null_state_run, &seen };
	assert_int_equal(pool_submit(p, &job), 0);
	pool_stop(p);
	assert_int_equal(seen, 1);
	pool_free(p);
}

/* ---- parallel workers --------------------------------------------------- */

struct rendezvous {
	unsigned int	 want;		/* jobs that must meet */
	unsigned int	 arrived;
	unsigned int	 peak;
	unsigned int	 timed_out;
	unsigned int	 distinct;	/* threads seen */
	pthread_t	 threads[8];
};

static void
rendezvous_run(void *state, void *arg)
{
	struct rendezvous	*r = arg;
	struct timespec		 until = deadline(3000);
	unsigned int		 i;
	int			 known = 0;

	(void)state;
	pthread_mutex_lock(&lock);
	for (i = 0; i < r->distinct; i++)
		if (pthread_equal(r->threads[i], pthread_self()))
			known = 1;
	if (!known && r->distinct < 8)
		r->threads[r->distinct++] = pthread_self();
	r->arrived++;
	if (r->arrived > r->peak)
		r->peak = r->arrived;
	pthread_cond_broadcast(&cond);
	/* Only workers running at once can all get past this. */
	while (r->peak < r->want)
		if (pthread_cond_timedwait(&cond, &lock, &until) != 0) {
			r->timed_out++;
			break;
		}
	pthread_mutex_unlock(&lock);
}

static void
test_parallel(void **state)
{
	enum { NWORKERS = 4 };
	struct rendezvous	 r;
	struct pool_job		 jobs[NWORKERS];
	struct pool		*p;
	unsigned int		 i;
	double			 t0 = mono();

	(void)state;
	memset(&r, 0, sizeof r);
	r.want = NWORKERS;
	p = pool_start(NWORKERS, 16, NULL, NULL, NULL);
	for (i = 0; i < NWORKERS; i++) {
		jobs[i] = (struct pool_job){ rendezvous_run, &r };
		assert_int_equal(pool_submit(p, &jobs[i]), 0);
	}
	pool_stop(p);
	assert_int_equal(r.timed_out, 0);
	assert_int_equal(r.peak, NWORKERS);
	assert_int_equal(r.arrived, NWORKERS);
	assert_int_equal(r.distinct, NWORKERS);
	assert_true(mono() - t0 < 2.5);
	pool_free(p);
}

/* ---- a job held on the worker: queue full, and stop drains ----------- */

struct gate {
	int		 started;
	int		 open;
	int		 timed_out;
};

static void
gate_run(void *state, void *arg)
{
	struct gate	*g = arg;
	struct timespec	 until = deadline(4000);

	(void)state;
	pthread_mutex_lock(&lock);
	g->started = 1;
	pthread_cond_broadcast(&cond);
	while (!g->open)
		if (pthread_cond_timedwait(&cond, &lock, &until) != 0) {
			g->timed_out = 1;
			break;
		}
	pthread_mutex_unlock(&lock);
}

static void
gate_wait_started(struct gate *g)
{
	struct timespec	until = deadline(3000);

	pthread_mutex_lock(&lock);
	while (!g->started)
		if (pthread_cond_timedwait(&cond, &lock, &until) != 0)
			break;
	pthread_mutex_unlock(&lock);
	assert_true(g->started);
}

static void
gate_open(struct gate *g)
{
	pthread_mutex_lock(&lock);
	g->open = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

static unsigned int
runs_of(struct count_job *cj)
{
	unsigned int	n;

	pthread_mutex_lock(&lock);
	n = cj->runs;
	pthread_mutex_unlock(&lock);
	return n;
}

static void
test_queue_full(void **state)
{
	struct gate		 g = { 0, 0, 0 };
	struct pool_job		 blocker = { gate_run, &g };
	struct count_job	 jobs[4];
	struct pool		*p;
	unsigned int		 i;
	double			 t0;

	(void)state;
	memset(jobs, 0, sizeof jobs);
	p = pool_start(1, 3, NULL, NULL, NULL);
	assert_int_equal(pool_submit(p, &blocker), 0);
	gate_wait_started(&g);	/* the worker holds it; the queue is empty */
	for (i = 0; i < 4; i++)
		jobs[i].job = (struct pool_job){ count_run, &jobs[i] };
	for (i = 0; i < 3; i++)
		assert_int_equal(pool_submit(p, &jobs[i].job), 0);
	t0 = mono();
	assert_int_equal(pool_submit(p, &jobs[3].job), -1);	/* at once */
	assert_true(mono() - t0 < 0.5);
	for (i = 0; i < 4; i++)
		assert_int_equal(runs_of(&jobs[i]), 0);
	gate_open(&g);
	pool_stop(p);
	assert_false(g.timed_out);
	for (i = 0; i < 3; i++)
		assert_int_equal(jobs[i].runs, 1);
	assert_int_equal(jobs[3].runs, 0);	/* refused is never run */
	pool_free(p);
}

struct stopper {
	struct pool	*p;
	double		 took;
};

static void *
stopper_main(void *arg)
{
	struct stopper	*s = arg;
	double		 t0 = mono();

	pool_stop(s->p);
	s->took = mono() - t0;
	return NULL;
}

/*
 * pool_stop while jobs wait: new ones are refused at once, yet every
 * job queued before (held behind a busy worker) still runs, once.
 */
static void
test_stop_drains(void **state)
{
	enum { QUEUED = 10, EXTRA = 200 };
	struct gate		 g = { 0, 0, 0 };
	struct pool_job		 blocker = { gate_run, &g };
	struct count_job	*jobs;
	struct stopper		 s;
	struct pool		*p;
	pthread_t		 t;
	unsigned int		 i, n, accepted;
	int			 refused = 0;

	(void)state;
	jobs = calloc(QUEUED + EXTRA, sizeof *jobs);
	assert_non_null(jobs);
	for (i = 0; i < QUEUED + EXTRA; i++)
		jobs[i].job = (struct pool_job){ count_run, &jobs[i] };
	/* Room for all: a refusal below can only mean stopping. */
	p = pool_start(1, QUEUED + EXTRA + 1, NULL, NULL, NULL);
	assert_int_equal(pool_submit(p, &blocker), 0);
	gate_wait_started(&g);
	for (i = 0; i < QUEUED; i++)
		assert_int_equal(pool_submit(p, &jobs[i].job), 0);

	s = (struct stopper){ p, 0 };
	assert_int_equal(pthread_create(&t, NULL, stopper_main, &s), 0);
	/* Submit until the stop shows; the worker is still held. */
	for (n = QUEUED; n < QUEUED + EXTRA; n++) {
		if (pool_submit(p, &jobs[n].job) == -1) {
			refused = 1;
			break;
		}
		sleep_ms(5);
	}
	assert_true(refused);
	accepted = n;
	for (i = 0; i < QUEUED + EXTRA; i++)
		assert_int_equal(runs_of(&jobs[i]), 0);
	/* Still refused, however often asked. */
	for (i = 0; i < 3; i++)
		assert_int_equal(pool_submit(p, &jobs[QUEUED + EXTRA - 1].job),
		    -1);
	gate_open(&g);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_false(g.timed_out);
	for (i = 0; i < accepted; i++)
		if (jobs[i].runs != 1)
			fail_msg("queued job %u ran %u times", i, jobs[i].runs);
	for (; i < QUEUED + EXTRA; i++)
		assert_int_equal(jobs[i].runs, 0);
	assert_true(s.took < 4.0);
	pool_free(p);
	free(jobs);
}

/* After pool_stop: -1 until pool_free; stop twice, and NULL, are fine. */
static void
test_after_stop(void **state)
{
	struct count_job	 cj;
	struct pool		*p;
	int			 i;

	(void)state;
	memset(&cj, 0, sizeof cj);
	cj.job = (struct pool_job){ count_run, &cj };
	p = pool_start(3, 8, NULL, NULL, NULL);
	assert_int_equal(pool_submit(p, &cj.job), 0);
	pool_stop(p);
	assert_int_equal(cj.runs, 1);
	for (i = 0; i < 5; i++)
		assert_int_equal(pool_submit(p, &cj.job), -1);
	pool_stop(p);
	assert_int_equal(pool_submit(p, &cj.job), -1);
	assert_int_equal(cj.runs, 1);
	pool_free(p);
	pool_stop(NULL);
	pool_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_job_once),
		cmocka_unit_test(test_no_init),
		cmocka_unit_test(test_parallel),
		cmocka_unit_test(test_queue_full),
		cmocka_unit_test(test_stop_drains),
		cmocka_unit_test(test_after_stop),
	};

	alarm(30);	/* a hang ends the run instead of stalling it */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
