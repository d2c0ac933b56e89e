/* SPDX-License-Identifier: MIT */
/*
 * writer: the store thread's loop.  Each round takes every waiting job
 * (up to a cap), applies them in one transaction with a savepoint each
 * (so one bad job fails alone), commits once, and hands the answers to
 * walsync, which sends them once the WAL is on disk: a 200 from the
 * writer is a durability promise.  Past a WAL size, the writer also
 * catches the checkpoints up between rounds (store_checkpoint.h).
 *
 * Detection runs on a thread of its own (watch.h): after the commit each
 * batch goes there, and the next round writes the alerts that came back
 * before it answers the batch's request, so an answer still carries
 * its batch's alerts while the rules never hold up a commit.  The
 * detection thread wakes the writer with a job of its own (wake_job).
 * The writer also owns the outbox's rows: alert changes add notices in
 * the transaction that writes them, and the notifier's delivery
 * outcomes are marked in the next one (notify.h).  Besides batches, a
 * job may set a run's status (finish, which detection hears of) or its
 * tags and note (annotate, answered once committed: neither detection
 * nor eviction has anything to do with it).  On a tick that found no
 * job, the writer puts the block summaries of chunks that an older
 * gradwatchd left without (store_backfill.c).
 */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "evict.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "now.h"
#include "publish.h"
#include "query.h"
#include "queue.h"
#include "remote.h"
#include "store.h"
#include "store_checkpoint.h"
#include "store_json.h"
#include "store_outbox.h"
#include "store_remote.h"
#include "walsync.h"
#include "watch.h"
#include "wire_json.h"
#include "writer.h"
#include "xmalloc.h"
#include "thread_name.h"

#define WRITER_MAX_JOBS		256	/* jobs in one transaction */
#define WRITER_QUEUE_JOBS	4096
#define WRITER_GROUP_POINTS	((size_t)2 << 20)
#define WRITER_TICK_MS		1000	/* the detector's stall timer */
#define WRITER_PRUNE_S		3600.0	/* between prunes of the outbox */
#define WRITER_BACKFILL_CHUNKS	256	/* chunks a backfill step looks at */
#define WRITER_BACKFILL_S	0.05	/* backfill steps a quiet tick, at most */

struct writer {
	struct store	*st;		/* writer thread only */
	struct checkpoint *cp;		/* NULL for an in-memory store */
	struct walsync	*sync;		/* NULL for an in-memory store */
	struct watch	*watch;		/* writer thread only; NULL: no detection */
	struct publish	*pub;		/* writer thread only */
	struct store_outbox *outbox;	/* writer thread only; NULL: none */
	struct notify	*notify;	/* borrowed; NULL: no receivers */
	struct evict	*ev;		/* writer thread only; NULL: never */
	int		 backfilled;	/* writer thread only: no chunk left */
	struct store_remote *rlog;	/* writer thread only; NULL: none */
	struct remote	*remote;	/* borrowed; NULL: no targets */
	double		 next_prune;	/* writer thread only */
	struct queue	*q;
	pthread_t	 thread;
	int		 stopped;	/* main thread only */
	size_t		 max_points;	/* detection's backlog bound */
	/* Jobs waiting for their batch's detection: writer thread only. */
	struct writer_job **waiting;
	uint64_t	*tickets;
	size_t		 nwaiting, capwaiting;
	/* The detection thread's wake-up: queued at most once at a time. */
	struct writer_job wake_job;
	_Atomic int	 wake_pending;
};

/* Answer job with the error code (and its status) and message. */
static void
writer_fail(struct writer_job *job, const char *code, const char *message)
{
	job->status = wire_status(code);
	job->body = wire_error_body(code, message);
}

static char *
writer_dump(json_t *o)
{
	char	*s;

	s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
	json_decref(o);
	if (s == NULL)
		fatalx("writer: json_dumps failed");
	return s;
}

/* Apply one job inside the open transaction; remember its run id. */
static void
writer_apply(struct writer *w, struct writer_job *job, int64_t *run_id)
{
	char	*cause = NULL;
	int	 rc;

	*run_id = -1;
	if (job->kind == WRITER_JOB_INGEST) {
		rc = store_apply(w->st, job->batch, job->received_at, run_id,
		    &cause);
		job->log_id = rc == 0 ? store_remote_row(w->st, &job->plain) : 0;
	} else if (job->kind == WRITER_JOB_ANNOTATE) {
		rc = store_annotate_run(w->st, job->run, job->tags, job->note,
		    run_id, &cause);
		if (rc == 1) {
			writer_fail(job, "not_found", "no such run");
			return;
		}
	} else {
		rc = store_finish_run(w->st, job->run, job->finish_status,
		    job->received_at, run_id, &cause);
		if (rc == 1) {
			writer_fail(job, "not_found", "no such run");
			return;
		}
	}
	if (rc == -1) {
		log_warnx("writer: %s", cause);
		writer_fail(job, "internal", cause);
		free(cause);
		*run_id = -1;
		return;
	}
}

/*
 * After a COMMIT: the stream's messages for the n jobs (run_id -1 for a
 * failed one) and for the alerts the round wrote.
 */
static void
writer_publish(struct writer *w, struct writer_job **jobs, size_t n)
{
	const int64_t	*aids = NULL, *rids = NULL;
	size_t		 na = 0, nr = 0, i, j;

	if (!publish_is_wanted(w->pub))
		return;
	if (w->watch != NULL)
		watch_changes(w->watch, &aids, &na, &rids, &nr);
	/* Alerts first: they are what a viewer most needs soon. */
	for (i = 0; i < na; i++) {
		for (j = 0; j < i && aids[j] != aids[i]; j++)
			;
		if (j == i)		/* once, in its committed state */
			publish_alert(w->pub, w->st, aids[i]);
	}
	for (i = 0; i < nr; i++)
		publish_run(w->pub, w->st, rids[i], 1);
	for (i = 0; i < n; i++) {
		if (jobs[i]->run_id == -1)
			continue;
		/* Only on a change; tags and a note are one. */
		publish_run(w->pub, w->st, jobs[i]->run_id,
		    jobs[i]->kind == WRITER_JOB_ANNOTATE ? PUBLISH_RUN_ALWAYS :
		    jobs[i]->kind == WRITER_JOB_FINISH);
		if (jobs[i]->kind == WRITER_JOB_INGEST)
			publish_batch(w->pub, jobs[i]->batch);
	}
}

/*
 * Inside a transaction: mark the deliveries the notifier reported, and
 * now and then prune the outbox.  A failed mark only means the notice
 * is delivered again later.
 */
static void
writer_outbox(struct writer *w)
{
	struct notify_result	*r;
	char			*cause = NULL;
	double			 now;
	size_t			 n, i;

	if (w->outbox == NULL)
		return;
	r = notify_results(w->notify, &n);
	for (i = 0; i < n; i++)
		if (store_outbox_done(w->outbox, r[i].id, r[i].sent,
		    r[i].attempts, r[i].error, r[i].at, &cause) == -1) {
			log_warnx("writer: %s", cause);
			free(cause);
			cause = NULL;
		}
	notify_results_free(r, n);
	if ((now = now_mono()) < w->next_prune)
		return;
	w->next_prune = now + WRITER_PRUNE_S;
	if (store_outbox_prune(w->outbox, now_wall(), &cause) == -1) {
		log_warnx("writer: %s", cause);
		free(cause);
	}
}

/* Publish what the writer's cache holds (the /metrics gauges). */
static void
writer_gauges(struct writer *w)
{
	size_t	entries, points;

	store_cache_stats(w->st, &entries, &points);
	metrics_store_cache(entries, points);
}

/*
 * Inside a transaction: write the remote-write cursors that moved and
 * prune the log.  A failed mark only means those samples go again
 * after a restart.
 */
static void
writer_remote(struct writer *w)
{
	char	*cause = NULL;

	if (w->rlog == NULL)
		return;
	if (store_remote_sync(w->rlog, remote_acked(w->remote), now_wall(),
	    &cause) == -1) {
		log_warnx("writer: %s", cause);
		free(cause);
	}
}

/* After a commit: wake the notifier if the round added notices. */
static void
writer_notify(struct writer *w)
{
	if (w->watch != NULL && watch_notices(w->watch) > 0)
		notify_wake(w->notify);
}

/* Build the success answer of a committed job (writer thread). */
static void
writer_answer(struct writer *w, struct writer_job *job)
{
	json_t	*run, *o;

	run = store_json_run(w->st, job->run_id);
	if (run == NULL) {
		writer_fail(job, "internal", "run vanished after commit");
		return;
	}
	if (job->kind != WRITER_JOB_INGEST) {
		job->status = 200;
		job->body = writer_dump(run);
		return;
	}
	o = json_pack("{s:I, s:O, s:o}",
	    "accepted", (json_int_t)job->points,
	    "health", json_object_get(run, "health"),
	    "alerts", store_json_firing_alerts(w->st, job->run_id));
	json_decref(run);
	if (o == NULL)
		fatalx("writer: json_pack failed");
	job->status = 200;
	job->body = writer_dump(o);
}

/*
 * After the commit of job: note its run as seen (or, finished, forget
 * what memory holds of it).  Returns 1 when the run had been evicted,
 * with *last_step its last step before job's batch.
 */
static int
writer_seen(struct writer *w, struct writer_job *job, int64_t *last_step)
{
	*last_step = -1;
	if (w->ev == NULL)
		return 0;
	if (job->kind == WRITER_JOB_FINISH) {
		evict_forget(w->ev, job->run_id);
		store_cache_evict(w->st, &job->run_id, 1);
		return 0;
	}
	return evict_seen(w->ev, job->run_id, batch_last_step(job->batch),
	    now_mono(), last_step);
}

/*
 * After the commit of job: its batch (or its run's end) goes to
 * detection, and the job waits for that ticket to be written.  The
 * batch of an evicted run (restore) goes after the replay of its steps
 * up to last_step.
 */
static void
writer_defer(struct writer *w, struct writer_job *job, int restore,
    int64_t last_step)
{
	uint64_t	ticket;

	if (job->kind == WRITER_JOB_INGEST) {
		if (restore) {
			watch_refill(w->watch, w->st, job->run_id, last_step,
			    job->received_at);
			metrics_restored();
		}
		ticket = watch_batch(w->watch, job->run_id, job->batch,
		    job->received_at);
		job->batch = NULL;		/* detection's now */
	} else
		ticket = watch_forget(w->watch, job->run_id);
	if (w->nwaiting == w->capwaiting) {
		w->capwaiting = w->capwaiting == 0 ? 256 : w->capwaiting * 2;
		w->waiting = xreallocarray(w->waiting, w->capwaiting,
		    sizeof *w->waiting);
		w->tickets = xreallocarray(w->tickets, w->capwaiting,
		    sizeof *w->tickets);
	}
	w->waiting[w->nwaiting] = job;
	w->tickets[w->nwaiting++] = ticket;
}

/* A growing list of jobs to answer this round. */
struct writer_answers {
	struct writer_job	**job;
	size_t			 n, cap;
};

static void
writer_answers_add(struct writer_answers *a, struct writer_job *job)
{
	if (a->n == a->cap) {
		a->cap = a->cap == 0 ? 64 : a->cap * 2;
		a->job = xreallocarray(a->job, a->cap, sizeof *a->job);
	}
	a->job[a->n++] = job;
}

/* Answer the waiting jobs whose tickets are <= done (their alerts are written). */
static void
writer_waiting_done(struct writer *w, uint64_t done, struct writer_answers *ans)
{
	size_t	i, k;

	for (i = k = 0; i < w->nwaiting; i++) {
		if (w->tickets[i] <= done) {
			writer_answer(w, w->waiting[i]);
			writer_answers_add(ans, w->waiting[i]);
		} else {
			w->waiting[k] = w->waiting[i];
			w->tickets[k++] = w->tickets[i];
		}
	}
	w->nwaiting = k;
}

/* Hand answers to the WAL syncer (or answer at once without one). */
static void
writer_answers_send(struct writer *w, struct writer_answers *ans)
{
	size_t	i;

	if (ans->n > 0) {
		if (w->sync != NULL)
			walsync_submit(w->sync, ans->job, ans->n);
		else
			for (i = 0; i < ans->n; i++)
				ans->job[i]->done(ans->job[i],
				    ans->job[i]->done_arg);
	}
	free(ans->job);
}

/*
 * Detection woke the writer and no request waits: when it made no
 * events, the jobs whose tickets it finished are answered with no
 * transaction (their points were committed by an earlier round).
 * Returns 0 when that was all, -1 when a round must write events.
 */
static int
writer_quiet_wake(struct writer *w)
{
	struct writer_answers	 ans = { NULL, 0, 0 };
	uint64_t		 done;

	if (watch_poll(w->watch, &done) > 0)
		return -1;
	writer_waiting_done(w, done, &ans);
	writer_answers_send(w, &ans);
	return 0;
}

/*
 * One round: in one transaction, the outbox's marks, the alerts
 * detection made, and jobs[0..n) (none for a tick or a wake-up); then
 * the answers of every job whose alerts are now written.
 */
static void
writer_round(struct writer *w, struct writer_job **jobs, size_t n)
{
	struct writer_answers	 ans = { NULL, 0, 0 };
	char			*cause = NULL;
	double			 t0;
	uint64_t		 done = 0;
	int64_t			 last_step;
	size_t			 i, points = 0, ok = 0;
	int			 restore;

	checkpoint_catch_up(w->cp, w->st);
	t0 = now_mono();
	if (w->watch != NULL)
		watch_changes_clear(w->watch);
	if (store_begin(w->st, &cause) == -1) {
		log_warnx("writer: %s", cause);
		for (i = 0; i < n; i++)
			writer_fail(jobs[i], "overloaded", cause);
		free(cause);
		goto answer;
	}
	writer_outbox(w);
	writer_remote(w);
	if (w->watch != NULL)
		done = watch_apply(w->watch, w->st, now_wall());
	for (i = 0; i < n; i++) {
		writer_apply(w, jobs[i], &jobs[i]->run_id);
		if (jobs[i]->run_id == -1)
			continue;
		ok++;
		if (jobs[i]->kind == WRITER_JOB_INGEST) {
			jobs[i]->points = jobs[i]->batch->npoints;
			points += jobs[i]->points;
		} else if (jobs[i]->kind == WRITER_JOB_FINISH &&
		    w->watch != NULL)
			watch_finish(w->watch, w->st,
			    jobs[i]->run_id, jobs[i]->received_at);
	}
	if (store_commit(w->st, &cause) == -1) {
		log_warnx("writer: commit of %zu requests failed: %s", n, cause);
		for (i = 0; i < n; i++)
			if (jobs[i]->run_id != -1) {
				writer_fail(jobs[i], "overloaded", cause);
				jobs[i]->run_id = -1;
			}
		free(cause);
		goto answer;
	}
	if (n > 0) {
		metrics_commit(ok, now_mono() - t0);
		metrics_points(points);
	}
	writer_notify(w);
	for (i = 0; i < n && w->remote != NULL; i++)
		if (jobs[i]->run_id != -1 &&
		    jobs[i]->kind == WRITER_JOB_INGEST)
			remote_keep(w->remote, jobs[i]->log_id,
			    jobs[i]->run_id, jobs[i]->plain ?
			    jobs[i]->batch : NULL);
	if (points > 0)
		remote_wake(w->remote, points);
	writer_publish(w, jobs, n);	/* viewers before answers */
	for (i = 0; i < n; i++) {
		if (jobs[i]->run_id == -1)
			continue;
		/* Tags and a note are no news to detection or eviction. */
		if (jobs[i]->kind == WRITER_JOB_ANNOTATE) {
			writer_answer(w, jobs[i]);
			writer_answers_add(&ans, jobs[i]);
			continue;
		}
		restore = writer_seen(w, jobs[i], &last_step);
		if (w->watch != NULL)
			writer_defer(w, jobs[i], restore, last_step);
		else {
			writer_answer(w, jobs[i]);
			writer_answers_add(&ans, jobs[i]);
		}
	}
	writer_waiting_done(w, done, &ans);
	writer_gauges(w);
answer:
	for (i = 0; i < n; i++) {
		if (jobs[i]->run_id == -1)
			writer_answers_add(&ans, jobs[i]);
		batch_free(jobs[i]->batch);
		jobs[i]->batch = NULL;
	}
	writer_answers_send(w, &ans);
}

/*
 * Between rounds: evict what memory holds of the runs that sent no step
 * for run-idle-evict (the cache's entries here, the tensors' state on
 * the detection thread), and give the freed pages back.
 */
static void
writer_evict(struct writer *w)
{
	const int64_t	*ids;
	size_t		 n, i;

	if (w->ev == NULL || (n = evict_due(w->ev, now_mono(), &ids)) == 0)
		return;
	store_cache_evict(w->st, ids, n);
	for (i = 0; w->watch != NULL && i < n; i++)
		watch_evict(w->watch, ids[i]);
	metrics_evicted(n);
	writer_gauges(w);
	xmalloc_release();
	log_debug("writer: evicted %zu quiet runs", n);
}

/*
 * On a tick that found nothing to do: older chunks' block summaries
 * (store_backfill_step), for up to WRITER_BACKFILL_S.  A failure is
 * logged and ends the backfill until the next start.
 */
static void
writer_backfill(struct writer *w)
{
	double	start = now_mono();
	char	*cause = NULL;

	while (!w->backfilled && now_mono() - start < WRITER_BACKFILL_S) {
		if (store_backfill_step(w->st, WRITER_BACKFILL_CHUNKS,
		    &w->backfilled, &cause) == -1) {
			log_warnx("writer: block summaries of older chunks: %s",
			    cause);
			free(cause);
			w->backfilled = 1;
		}
	}
}

/* Detection thread: it finished an item; the writer comes for its events. */
static void
writer_wake_cb(void *arg)
{
	struct writer	*w = arg;

	if (!atomic_exchange(&w->wake_pending, 1) &&
	    queue_push(w->q, &w->wake_job, 1) == -1)
		atomic_store(&w->wake_pending, 0);	/* closed or full */
}

static void *
writer_main(void *arg)
{
	struct writer		*w = arg;
	struct writer_job	*jobs[WRITER_MAX_JOBS];
	size_t			 n, i, k;
	double			 last_tick, t;
	int			 closed = 0, woken, events;

	thread_name("gw-writer");
	if (w->watch != NULL) {
		watch_restore(w->watch, w->st, w->ev);
		watch_start(w->watch, w->max_points, writer_wake_cb, w);
	}
	last_tick = now_mono();
	while (!closed) {
		n = queue_pop_wait(w->q, (void **)jobs, WRITER_MAX_JOBS,
		    WRITER_GROUP_POINTS, WRITER_TICK_MS, &closed);
		for (i = k = 0, woken = 0; i < n; i++)
			if (jobs[i] == &w->wake_job)
				woken = 1;
			else
				jobs[k++] = jobs[i];
		if (woken)
			atomic_store(&w->wake_pending, 0);
		/* Answers that waited only for detection go out first. */
		events = woken && writer_quiet_wake(w) == -1;
		if (k > 0 || events)
			writer_round(w, jobs, k);
		if ((t = now_mono()) - last_tick >= WRITER_TICK_MS / 1e3) {
			if (w->watch != NULL)
				watch_tick(w->watch, now_wall());
			writer_round(w, NULL, 0);	/* the outbox's marks */
			writer_evict(w);
			if (n == 0)
				writer_backfill(w);
			last_tick = t;
		}
	}
	/* The last alerts, and the answers that waited for them. */
	if (w->watch != NULL)
		watch_drain(w->watch);
	writer_round(w, NULL, 0);
	return NULL;
}

static size_t
writer_job_weight(const struct writer_job *job)
{
	return job->kind == WRITER_JOB_INGEST ? job->batch->npoints + 1 : 1;
}

struct writer *
writer_start(struct store *st, const struct config *cfg,
    struct ws_stream *ws, struct notify *notify, struct remote *remote)
{
	struct writer	*w;
	const char	*db_path = cfg->db_path;
	char		*cause = NULL;
	int		 rc;

	w = xcalloc(1, sizeof *w);
	w->st = st;
	w->pub = publish_new(ws);
	w->notify = notify;
	if (notify != NULL && (w->outbox = store_outbox_new(st,
	    cfg->receivers, cfg->nreceivers, cfg->external_url,
	    &cause)) == NULL)
		fatalx("%s", cause);
	w->remote = remote;
	if (remote != NULL && (w->rlog = store_remote_new(st, cfg->remotes,
	    cfg->nremotes, &cause)) == NULL)
		fatalx("%s", cause);
	if (cfg->detect)
		w->watch = watch_new(cfg->detector, w->outbox);
	if (cfg->run_idle_evict > 0)
		w->ev = evict_new(cfg->run_idle_evict);
	if (strcmp(db_path, ":memory:") != 0) {
		if ((w->cp = checkpoint_start(db_path, st, &cause)) == NULL ||
		    (w->sync = walsync_start(store_wal_path(st), &cause)) ==
		    NULL)
			fatalx("%s", cause);
	}
	w->q = queue_new(WRITER_QUEUE_JOBS, cfg->queue_points);
	w->max_points = cfg->queue_points;
	if ((rc = pthread_create(&w->thread, NULL, writer_main, w)) != 0)
		fatalx("writer: pthread_create: %s", strerror(rc));
	return w;
}

int
writer_submit(struct writer *w, struct writer_job *job)
{
	if (queue_push(w->q, job, writer_job_weight(job)) == -1) {
		metrics_overloaded();
		return -1;
	}
	return 0;
}

size_t
writer_queue_depth(struct writer *w)
{
	return queue_depth(w->q);
}

void
writer_stop(struct writer *w)
{
	if (w == NULL || w->stopped)
		return;
	queue_close(w->q);
	pthread_join(w->thread, NULL);
	walsync_stop(w->sync);		/* the last answers */
	w->sync = NULL;
	checkpoint_stop(w->cp);		/* before the store: it holds the hook */
	w->cp = NULL;
	watch_free(w->watch);
	w->watch = NULL;
	store_outbox_free(w->outbox);	/* its statements, before the store */
	w->outbox = NULL;
	store_remote_free(w->rlog);	/* likewise */
	w->rlog = NULL;
	store_close(w->st);
	w->st = NULL;
	publish_free(w->pub);
	w->pub = NULL;
	w->stopped = 1;
}

void
writer_free(struct writer *w)
{
	if (w == NULL)
		return;
	writer_stop(w);
	queue_free(w->q);
	evict_free(w->ev);
	free(w->waiting);
	free(w->tickets);
	free(w);
}
