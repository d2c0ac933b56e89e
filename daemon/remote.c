/* SPDX-License-Identifier: MIT */
/*
 * remote: the remote-write sender threads; see remote.h.  A sender's
 * cursor is the id of the last remote_log row it sent through.  Why a
 * log row and not a tails row or a step: tails rows are sealed into
 * chunks and deleted, so their ids vanish; a per-series last step
 * would miss a step sent again below it; a log row is a commit's run
 * and step range, never rewritten, and a step sent again adds a row.
 * A row too big for one request is sent in windows of steps; the
 * window reached is kept in memory only (after a restart the row is
 * sent from its start again).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#ifndef SCHED_IDLE
#define SCHED_IDLE		5	/* Linux's; glibc names it under _GNU_SOURCE */
#endif
#endif

#include <curl/curl.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "now.h"
#include "query_remote.h"
#include "remote.h"
#include "remote_encode.h"
#include "remote_feed.h"
#include "remote_target.h"
#include "xmalloc.h"
#include "thread_name.h"

#define REMOTE_ROWS		256	/* log rows read at a time */
#define REMOTE_FEED_POINTS	(2u << 20) /* batches kept: at most 32 MiB */
#define REMOTE_SERIES_RUNS	64	/* runs whose series a sender keeps */
#define REMOTE_BACKOFF_MIN	0.25	/* seconds */
#define REMOTE_BACKOFF_MAX	30.0
#define REMOTE_TIMEOUT_MS	30000L
#define REMOTE_POLL_S		1.0	/* looks even when not woken */
#define REMOTE_LINGER_S		0.2	/* at most, after one not half full */
#define REMOTE_BACKLOG_S	1.0	/* between counts of the backlog */
#define REMOTE_ERROR_MAX	200	/* bytes of an answer kept */
#define REMOTE_NICE		19	/* where SCHED_IDLE is refused */
#define REMOTE_USER_AGENT	"gradwatchd-remote-write/0.1"

enum remote_outcome { REMOTE_SENT, REMOTE_RETRY, REMOTE_DROP };

struct remote_sender {
	struct remote			*r;
	const struct remote_target	*t;
	pthread_t			 thread;
	int				 started;	/* main thread */
	/* The sender thread's own. */
	struct query_remote		*qr;
	struct remote_enc		*enc;
	CURL				*curl;
	struct curl_slist		*hdrs;
	char				 errbuf[CURL_ERROR_SIZE];
	char				 reply[REMOTE_ERROR_MAX + 1];
	size_t				 replylen;
	int64_t				 sent;		/* log rows sent through */
	int64_t				 part_row;	/* a row sent in windows */
	int64_t				 part_next;	/* its next step */
	struct remote_row		 rows[REMOTE_ROWS];	/* log order */
	struct remote_row		 byrun[REMOTE_ROWS];	/* a request's, by run */
	int				 inmem[REMOTE_ROWS];	/* byrun's in the feed */
	struct {
		int64_t	run_id;
		int64_t	width;
		int64_t	max_id;
	}				 widths[REMOTE_ROWS];	/* a request's runs */
	size_t				 nwidths;
	struct {
		int64_t			 run_id;	/* 0: none */
		struct remote_series	*ser;
		size_t			 n;
	}				 series[REMOTE_SERIES_RUNS];
	size_t				 series_next;	/* the next to replace */
	struct remote_feed_span		 span;		/* batches of a span */
	/* A request built: what sending it moves the cursor to. */
	int64_t				 to_sent;
	int64_t				 to_part_row;
	int64_t				 to_part_next;
	/* Read by any thread. */
	_Atomic int64_t			 acked;
	_Atomic uint64_t		 samples[3];	/* sent, failed, dropped */
	_Atomic uint64_t		 from[2];	/* log rows: memory, database */
	_Atomic int64_t			 backlog_rows;
	_Atomic int64_t			 backlog_steps;
	pthread_mutex_t			 elock;
	char				*last_error;	/* {elock} */
	double				 last_error_at;	/* {elock} */
};

struct remote {
	pthread_mutex_t		 lock;
	pthread_cond_t		 cond;		/* {lock}: gen moved or stop */
	uint64_t		 gen;		/* {lock} */
	uint64_t		 told;		/* {lock}: points committed */
	int			 stopping;	/* {lock} */
	_Atomic int		 halt;		/* ends requests in flight */
	struct remote_sender	*s;
	size_t			 n;
	int64_t			*acked;		/* writer thread */
	struct remote_feed	*feed;
};

/* curl's progress callback: a request in flight ends at shutdown. */
static int
remote_progress_cb(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	struct remote_sender	*s = arg;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return atomic_load(&s->r->halt);
}

/* Keep the start of the answer's body, for the error line. */
static size_t
remote_reply_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct remote_sender	*s = arg;
	size_t			 n = size * nmemb, k;

	k = REMOTE_ERROR_MAX - s->replylen;
	k = n < k ? n : k;
	memcpy(s->reply + s->replylen, data, k);
	s->replylen += k;
	s->reply[s->replylen] = '\0';
	return n;
}

static void
remote_set_error(struct remote_sender *s, char *error)
{
	pthread_mutex_lock(&s->elock);
	free(s->last_error);
	s->last_error = error;
	s->last_error_at = now_wall();
	pthread_mutex_unlock(&s->elock);
}

/* seconds from now on the clock of r->cond, into *ts. */
static void
remote_deadline(struct timespec *ts, double seconds)
{
	double	until;

	clock_gettime(CLOCK_MONOTONIC, ts);
	until = (double)ts->tv_sec + ts->tv_nsec / 1e9 + seconds;
	ts->tv_sec = (time_t)until;
	ts->tv_nsec = (long)((until - (double)ts->tv_sec) * 1e9);
}

/*
 * Wait until woken (unless backoff) or for seconds; 1 when stopping.
 * seen is the wake generation already looked at.
 */
static int
remote_wait(struct remote *r, uint64_t *seen, double seconds, int backoff)
{
	struct timespec	ts;
	int		stopping;

	remote_deadline(&ts, seconds);
	pthread_mutex_lock(&r->lock);
	while (!r->stopping && (backoff || r->gen == *seen))
		if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) != 0)
			break;
	*seen = r->gen;
	stopping = r->stopping;
	pthread_mutex_unlock(&r->lock);
	return stopping;
}

/*
 * The samples a step of run_id (its series, plus the step and health
 * series), and its series' greatest id, known once a request.
 */
static int
remote_width(struct remote_sender *s, int64_t run_id, int64_t *width,
    int64_t *max_id, char **cause)
{
	size_t	i;
	int64_t	nser;

	for (i = 0; i < s->nwidths; i++)
		if (s->widths[i].run_id == run_id) {
			*width = s->widths[i].width;
			*max_id = s->widths[i].max_id;
			return 0;
		}
	if (query_remote_series_count(s->qr, run_id, &nser, max_id,
	    cause) == -1)
		return -1;
	*width = nser + 2;
	if (s->nwidths < REMOTE_ROWS) {
		s->widths[s->nwidths].run_id = run_id;
		s->widths[s->nwidths].max_id = *max_id;
		s->widths[s->nwidths++].width = *width;
	}
	return 0;
}

/*
 * The series of run_id, kept from request to request: a run's series
 * only grow (ids rising), so the list stands while their count and
 * greatest id do (a run deleted and its id given again changes the
 * ids).  Owned by s.  0, or -1 with *cause.
 */
static int
remote_run_series(struct remote_sender *s, int64_t run_id,
    struct remote_series **ser, size_t *n, char **cause)
{
	int64_t	width, max_id;
	size_t	i;

	if (remote_width(s, run_id, &width, &max_id, cause) == -1)
		return -1;
	for (i = 0; i < REMOTE_SERIES_RUNS; i++)
		if (s->series[i].run_id == run_id)
			break;
	if (i < REMOTE_SERIES_RUNS &&
	    (int64_t)s->series[i].n == width - 2 && (s->series[i].n == 0 ||
	    s->series[i].ser[s->series[i].n - 1].id == max_id)) {
		*ser = s->series[i].ser;
		*n = s->series[i].n;
		return 0;
	}
	if (i == REMOTE_SERIES_RUNS) {
		i = s->series_next;
		s->series_next = (i + 1) % REMOTE_SERIES_RUNS;
	}
	remote_series_free(s->series[i].ser, s->series[i].n);
	s->series[i].run_id = 0;
	s->series[i].ser = NULL;
	s->series[i].n = 0;
	if (query_remote_series(s->qr, run_id, &s->series[i].ser,
	    &s->series[i].n, cause) == -1)
		return -1;
	s->series[i].run_id = run_id;
	*ser = s->series[i].ser;
	*n = s->series[i].n;
	return 0;
}

/* A remote_source on the database: the sender's read transaction. */
static int
remote_db_points(void *arg, const struct remote_series *s, int64_t lo,
    int64_t hi, struct remote_points *p, char **cause)
{
	return query_remote_points(arg, s->id, lo, hi, p, cause);
}

/*
 * Encode run rows[0]'s span [lo, hi] (rows[0..nrows-1] its log rows;
 * whole: the rows' own steps, not a window of one).  From the batches
 * the feed kept when it has them all, else from the database.  0, or -1
 * with *cause.
 */
static int
remote_span(struct remote_sender *s, const struct remote_row *rows,
    size_t nrows, int64_t lo, int64_t hi, int whole, char **cause)
{
	struct remote_source	 src = { remote_db_points, s->qr };
	struct remote_run	 run;
	struct remote_series	*ser;
	size_t			 nser;
	int			 rc = -1;

	if (query_remote_run(s->qr, rows[0].run_id, &run, cause) == -1)
		return -1;
	if (remote_run_series(s, rows[0].run_id, &ser, &nser, cause) == -1)
		goto out;
	if (whole && remote_feed_take(s->r->feed, rows, nrows, &s->span)) {
		src.points = remote_feed_points;
		src.arg = &s->span;
	}
	atomic_fetch_add(&s->from[src.arg == s->qr], nrows);
	rc = remote_enc_span(s->enc, &src, &run, ser, nser, lo, hi, rows,
	    nrows, s->t->layer_every, cause);
	remote_feed_span_clear(&s->span);
out:
	remote_run_cleanup(&run);
	return rc;
}

/* The first step of row r still to send (a row sent in windows). */
static int64_t
remote_row_from(const struct remote_sender *s, const struct remote_row *r)
{
	return s->part_row == r->id && s->part_next > r->first ?
	    s->part_next : r->first;
}

/* Rows by run, then log order: qsort's order of s->byrun. */
static int
remote_byrun_cmp(const void *a, const void *b)
{
	const struct remote_row	*x = a, *y = b;

	if (x->run_id != y->run_id)
		return x->run_id < y->run_id ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

/*
 * Encode the first row after the cursor, too big for one request, in a
 * window of steps from where it stands: 0, or -1 with *cause.
 */
static int
remote_build_window(struct remote_sender *s, int64_t width, char **cause)
{
	const struct remote_row	*r = &s->rows[0];
	int64_t			 lo, hi, budget;

	lo = remote_row_from(s, r);
	budget = (int64_t)REMOTE_MAX_SAMPLES / width;
	budget = budget < 1 ? 1 : budget;
	hi = (uint64_t)(r->last - lo) >= (uint64_t)budget ?
	    lo + budget - 1 : r->last;
	if (remote_span(s, r, 1, lo, hi, lo == r->first && hi == r->last,
	    cause) == -1)
		return -1;
	if (hi == r->last) {
		s->to_sent = r->id;
		return 0;
	}
	s->to_part_row = r->id;
	s->to_part_next = hi + 1;
	return 0;
}

/*
 * Build the next request from the rows after the cursor: 1 with
 * s->to_* set, 0 when there is nothing to send, -1 with *cause.  A
 * request takes the rows after the cursor, in log order, while their
 * samples (estimated from each row's steps and its run's series) stay
 * under REMOTE_MAX_SAMPLES; a first row past that goes in windows of
 * steps.  Within the request the rows of one run go together, those
 * whose ranges meet as one span: a run's series are then one long
 * TimeSeries each, not one a batch (requests from runs sending at once
 * interleave their rows).  A series' samples stay in step order: its
 * run's rows are taken in log order.
 */
static int
remote_build(struct remote_sender *s, char **cause)
{
	struct remote_row	*rows = s->byrun;
	int64_t			 lo, hi, width, max_id, used = 0, rest, through;
	int			 nr, m, i, j, rc = -1;

	remote_enc_reset(s->enc);
	s->nwidths = 0;
	if (query_remote_begin(s->qr, cause) == -1)
		return -1;
	if ((nr = query_remote_rows(s->qr, s->sent, s->rows, REMOTE_ROWS,
	    cause)) == -1)
		goto out;
	/* Rows the writer has not told of yet come with its next wake. */
	through = remote_feed_through(s->r->feed);
	while (nr > 0 && s->rows[nr - 1].id > through)
		nr--;
	s->to_sent = s->sent;
	s->to_part_row = 0;
	s->to_part_next = 0;
	for (m = 0; m < nr; m++) {
		if (remote_width(s, s->rows[m].run_id, &width, &max_id,
		    cause) == -1)
			goto out;
		rest = s->rows[m].last - remote_row_from(s, &s->rows[m]) + 1;
		rest = s->rows[m].n < rest ? s->rows[m].n : rest;
		if (used + rest * width > (int64_t)REMOTE_MAX_SAMPLES)
			break;
		used += rest * width;
	}
	if (m == 0 && nr > 0) {
		if (remote_width(s, s->rows[0].run_id, &width, &max_id,
		    cause) == -1 ||
		    remote_build_window(s, width, cause) == -1)
			goto out;
		rc = 1;
		goto out;
	}
	memcpy(rows, s->rows, (size_t)m * sizeof *rows);
	qsort(rows, (size_t)m, sizeof *rows, remote_byrun_cmp);
	for (i = 0; i < m; i++)
		s->inmem[i] = remote_feed_has(s->r->feed, rows[i].id,
		    rows[i].run_id);
	for (i = 0; i < m; i = j) {
		lo = remote_row_from(s, &rows[i]);
		hi = rows[i].last;
		/*
		 * A row with steps below lo (sent again) starts a span, and
		 * so does one read back after rows kept in memory or the
		 * other way round: one such row costs only its own read.
		 */
		for (j = i + 1; j < m && rows[j].run_id == rows[i].run_id &&
		    rows[j].first <= hi + 1 && rows[j].first >= lo &&
		    s->inmem[j] == s->inmem[i]; j++)
			hi = rows[j].last > hi ? rows[j].last : hi;
		if (remote_span(s, &rows[i], (size_t)(j - i), lo, hi,
		    lo == rows[i].first, cause) == -1)
			goto out;
	}
	if (m > 0)
		s->to_sent = s->rows[m - 1].id;
	rc = nr > 0;
out:
	query_remote_end(s->qr);
	return rc;
}

/* POST body; what the answer means. */
static enum remote_outcome
remote_post(struct remote_sender *s, const char *body, size_t len)
{
	CURLcode	 cc;
	long		 status = 0;
	char		*why;

	s->replylen = 0;
	s->reply[0] = '\0';
	s->errbuf[0] = '\0';
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)len);
	cc = curl_easy_perform(s->curl);
	if (cc != CURLE_OK) {
		xasprintf(&why, "%s", *s->errbuf != '\0' ? s->errbuf :
		    curl_easy_strerror(cc));
		remote_set_error(s, why);
		return REMOTE_RETRY;
	}
	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300)
		return REMOTE_SENT;
	xasprintf(&why, "HTTP %ld: %s", status, s->reply);
	remote_set_error(s, why);
	return status == 429 || status >= 500 ? REMOTE_RETRY : REMOTE_DROP;
}

/* Points committed since the start (remote_wake's). */
static uint64_t
remote_told(struct remote *r)
{
	uint64_t	told;

	pthread_mutex_lock(&r->lock);
	told = r->told;
	pthread_mutex_unlock(&r->lock);
	return told;
}

/*
 * After a request under half full, one that took all there was: wait
 * until half a request's points more were committed after mark, or for
 * REMOTE_LINGER_S.  A sender keeping up with heavy ingest then sends
 * full requests, not one a commit (each costs a read transaction, an
 * HTTP exchange and the target's own work), and never waits while a
 * backlog builds; under light ingest a point waits at most that long.
 * 1 when stopping.
 */
static int
remote_linger(struct remote *r, uint64_t mark)
{
	struct timespec	ts;
	int		stopping;

	remote_deadline(&ts, REMOTE_LINGER_S);
	pthread_mutex_lock(&r->lock);
	while (!r->stopping && r->told - mark < REMOTE_MAX_SAMPLES / 2)
		if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) != 0)
			break;
	stopping = r->stopping;
	pthread_mutex_unlock(&r->lock);
	return stopping;
}

/* Count the backlog now and then, for /metrics. */
static void
remote_backlog(struct remote_sender *s, double *next)
{
	int64_t	rows, steps;
	char	*cause = NULL;

	if (now_mono() < *next)
		return;
	*next = now_mono() + REMOTE_BACKLOG_S;
	if (query_remote_backlog(s->qr, s->sent, &rows, &steps,
	    &cause) == -1) {
		log_warnx("remote: %s: %s", s->t->name, cause);
		free(cause);
		return;
	}
	atomic_store(&s->backlog_rows, rows);
	atomic_store(&s->backlog_steps, steps);
}

/* The least cursor of r's senders: the feed's batches up to it are done. */
static int64_t
remote_least(struct remote *r)
{
	int64_t	least = INT64_MAX, a;
	size_t	i;

	for (i = 0; i < r->n; i++)
		if ((a = atomic_load(&r->s[i].acked)) < least)
			least = a;
	return least;
}

static void *
remote_main(void *arg)
{
	struct remote_sender	*s = arg;
	enum remote_outcome	 o;
	char			*cause = NULL;
	const char		*body;
	size_t			 len, nsamples;
	double			 backoff = REMOTE_BACKOFF_MIN, next_count = 0;
	uint64_t		 seen = 0, mark;
	int			 rc;

	thread_name("gw-remote");
#ifdef __linux__
	/*
	 * Linux schedules a thread alone.  A sender runs only on CPU that
	 * nothing else wants (SCHED_IDLE): ingest and queries never wait
	 * for it; under load that takes every core it lags, the log keeps
	 * what it lags, and it catches up when the load eases.
	 */
	{
		struct sched_param	sp;

		memset(&sp, 0, sizeof sp);
		if (sched_setscheduler((pid_t)syscall(SYS_gettid), SCHED_IDLE,
		    &sp) == -1)
			(void)setpriority(PRIO_PROCESS,
			    (id_t)syscall(SYS_gettid), REMOTE_NICE);
	}
#endif
	for (;;) {
		mark = remote_told(s->r);
		remote_backlog(s, &next_count);
		if ((rc = remote_build(s, &cause)) == -1) {
			log_warnx("remote: %s: %s", s->t->name, cause);
			remote_set_error(s, cause);
			cause = NULL;
			if (remote_wait(s->r, &seen, REMOTE_POLL_S, 1))
				break;
			continue;
		}
		if (rc == 0) {
			next_count = 0;
			remote_backlog(s, &next_count);
			if (remote_wait(s->r, &seen, REMOTE_POLL_S, 0))
				break;
			continue;
		}
		nsamples = remote_enc_samples(s->enc);
		o = REMOTE_SENT;
		if (nsamples > 0) {
			if (remote_enc_body(s->enc, &body, &len, &cause) == -1)
				fatalx("%s", cause);
			o = remote_post(s, body, len);
		}
		atomic_fetch_add(&s->samples[o], nsamples);
		if (o == REMOTE_RETRY) {
			if (remote_wait(s->r, &seen, backoff, 1))
				break;
			backoff = backoff * 2 > REMOTE_BACKOFF_MAX ?
			    REMOTE_BACKOFF_MAX : backoff * 2;
			continue;
		}
		if (o == REMOTE_DROP)
			log_warnx("remote: %s: dropped %zu samples of log rows "
			    "%" PRId64 " to %" PRId64 ": %s", s->t->name,
			    nsamples, s->sent + 1, s->to_sent, s->last_error);
		backoff = REMOTE_BACKOFF_MIN;
		s->sent = s->to_sent;
		s->part_row = s->to_part_row;
		s->part_next = s->to_part_next;
		atomic_store(&s->acked, s->sent);
		remote_feed_trim(s->r->feed, remote_least(s->r));
		if (nsamples < REMOTE_MAX_SAMPLES / 2 &&
		    remote_linger(s->r, mark))
			break;
	}
	return NULL;
}

/* The curl handle of target t, set up once. */
static int
remote_curl(struct remote_sender *s, char **cause)
{
	const struct remote_target	*t = s->t;
	char				*h;
	size_t				 i;

	if ((s->curl = curl_easy_init()) == NULL) {
		xasprintf(cause, "remote: %s: curl_easy_init failed", t->name);
		return -1;
	}
	s->hdrs = curl_slist_append(s->hdrs, "Content-Encoding: snappy");
	s->hdrs = curl_slist_append(s->hdrs,
	    "Content-Type: application/x-protobuf");
	s->hdrs = curl_slist_append(s->hdrs,
	    "X-Prometheus-Remote-Write-Version: 0.1.0");
	s->hdrs = curl_slist_append(s->hdrs, "Expect:");
	if (t->bearer != NULL) {
		xasprintf(&h, "Authorization: Bearer %s", t->bearer);
		s->hdrs = curl_slist_append(s->hdrs, h);
		explicit_bzero(h, strlen(h));
		free(h);
	}
	for (i = 0; i < t->nheaders; i++)
		s->hdrs = curl_slist_append(s->hdrs, t->headers[i]);
	if (s->hdrs == NULL)
		fatalx("remote: curl_slist_append failed");
	curl_easy_setopt(s->curl, CURLOPT_URL, t->url);
	curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, s->hdrs);
	curl_easy_setopt(s->curl, CURLOPT_TIMEOUT_MS, REMOTE_TIMEOUT_MS);
	curl_easy_setopt(s->curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(s->curl, CURLOPT_NOSIGNAL, 1L);
	/* A request's body (~2 MB) in one copy and a few sends, not 64 KiB. */
	curl_easy_setopt(s->curl, CURLOPT_UPLOAD_BUFFERSIZE, 2L << 20);
	curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, remote_reply_cb);
	curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(s->curl, CURLOPT_USERAGENT, REMOTE_USER_AGENT);
	curl_easy_setopt(s->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(s->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(s->curl, CURLOPT_XFERINFOFUNCTION, remote_progress_cb);
	curl_easy_setopt(s->curl, CURLOPT_XFERINFODATA, s);
	if (t->user != NULL) {
		curl_easy_setopt(s->curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(s->curl, CURLOPT_USERNAME, t->user);
		curl_easy_setopt(s->curl, CURLOPT_PASSWORD, t->password);
	}
	return 0;
}

struct remote *
remote_start(const struct config *cfg, char **cause)
{
	struct remote		*r;
	struct remote_sender	*s;
	pthread_condattr_t	 ca;
	size_t			 i;
	int64_t			 last;

	r = xcalloc(1, sizeof *r);
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	r->n = cfg->nremotes;
	r->s = xcalloc(r->n, sizeof *r->s);
	r->acked = xcalloc(r->n, sizeof *r->acked);
	for (i = 0; i < r->n; i++) {
		s = &r->s[i];
		s->r = r;
		s->t = &cfg->remotes[i];
		pthread_mutex_init(&s->elock, NULL);
		if ((s->qr = query_remote_open(cfg->db_path, cause)) == NULL ||
		    query_remote_cursor(s->qr, s->t->name, &s->sent,
		    cause) == -1 || remote_curl(s, cause) == -1)
			goto fail;
		s->enc = remote_enc_new();
		atomic_store(&s->acked, s->sent);
		atomic_store(&s->backlog_rows, 0);
		atomic_store(&s->backlog_steps, 0);
	}
	/* The rows in the log now; the writer tells of those to come. */
	if (query_remote_last(r->s[0].qr, &last, cause) == -1)
		goto fail;
	r->feed = remote_feed_new(REMOTE_FEED_POINTS, last);
	for (i = 0; i < r->n; i++) {
		if (pthread_create(&r->s[i].thread, NULL, remote_main,
		    &r->s[i]) != 0) {
			xasprintf(cause, "remote: cannot start a thread");
			goto fail;
		}
		r->s[i].started = 1;
	}
	return r;

fail:
	remote_stop(r);
	remote_free(r);
	return NULL;
}

void
remote_wake(struct remote *r, size_t points)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->gen++;
	r->told += points;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void
remote_keep(struct remote *r, int64_t log_id, int64_t run_id,
    struct batch *b)
{
	if (r != NULL && log_id > 0)
		remote_feed_add(r->feed, log_id, run_id, b);
}

const int64_t *
remote_acked(struct remote *r)
{
	size_t	i;

	for (i = 0; i < r->n; i++)
		r->acked[i] = atomic_load(&r->s[i].acked);
	return r->acked;
}

/* One gauge family, a line a target: backlog rows, steps, error time. */
static void
remote_metrics_gauge(struct remote *r, char **buf, size_t *len, size_t *cap,
    const char *name, const char *help, int which)
{
	struct remote_sender	*s;
	double			 v;
	size_t			 i;

	metrics_append(buf, len, cap, "# HELP %s %s\n# TYPE %s gauge\n", name,
	    help, name);
	for (i = 0; i < r->n; i++) {
		s = &r->s[i];
		if (which == 0)
			v = (double)atomic_load(&s->backlog_rows);
		else if (which == 1)
			v = (double)atomic_load(&s->backlog_steps);
		else {
			pthread_mutex_lock(&s->elock);
			v = s->last_error_at;
			pthread_mutex_unlock(&s->elock);
		}
		metrics_append(buf, len, cap, "%s{target=\"", name);
		metrics_append_label(buf, len, cap, s->t->name);
		metrics_append(buf, len, cap, "\"} %.17g\n", v);
	}
}

/*
 * One counter family, a line a target and value of label (values, NULL
 * ended): the senders' samples (which 0) or batches by source (1).
 */
static void
remote_metrics_counter(struct remote *r, char **buf, size_t *len,
    size_t *cap, const char *name, const char *help, const char *label,
    const char *const *values, int which)
{
	_Atomic uint64_t	*c;
	size_t			 i, k;

	metrics_append(buf, len, cap, "# HELP %s %s\n# TYPE %s counter\n",
	    name, help, name);
	for (i = 0; i < r->n; i++)
		for (k = 0; values[k] != NULL; k++) {
			c = which == 0 ? r->s[i].samples : r->s[i].from;
			metrics_append(buf, len, cap, "%s{target=\"", name);
			metrics_append_label(buf, len, cap, r->s[i].t->name);
			metrics_append(buf, len, cap, "\",%s=\"%s\"} %llu\n",
			    label, values[k],
			    (unsigned long long)atomic_load(&c[k]));
		}
}

char *
remote_metrics(struct remote *r)
{
	static const char *const results[] = { "sent", "failed", "dropped",
	    NULL };
	static const char *const sources[] = { "memory", "database", NULL };
	struct remote_sender	*s;
	char			*buf;
	size_t			 len = 0, cap = 1024, i;

	buf = xmalloc(cap);
	buf[0] = '\0';
	if (r == NULL)
		return buf;
	remote_metrics_counter(r, &buf, &len, &cap,
	    "gradwatch_remote_write_samples_total", "Samples in remote-write "
	    "requests by result: sent, failed (to be retried), dropped "
	    "(refused).", "result", results, 0);
	remote_metrics_counter(r, &buf, &len, &cap,
	    "gradwatch_remote_write_batches_total", "Stored batches encoded "
	    "for requests, by where their points came from: memory (kept "
	    "from the writer) or database (read back).", "source", sources,
	    1);
	remote_metrics_gauge(r, &buf, &len, &cap,
	    "gradwatch_remote_write_backlog_batches",
	    "Stored batches not yet sent.", 0);
	remote_metrics_gauge(r, &buf, &len, &cap,
	    "gradwatch_remote_write_backlog_steps",
	    "Steps of the batches not yet sent, at most.", 1);
	remote_metrics_gauge(r, &buf, &len, &cap,
	    "gradwatch_remote_write_last_error_timestamp_seconds",
	    "When a request last failed (0: never).", 2);
	metrics_append(&buf, &len, &cap, "# HELP "
	    "gradwatch_remote_write_last_error The last failure, as a label.\n"
	    "# TYPE gradwatch_remote_write_last_error gauge\n");
	for (i = 0; i < r->n; i++) {
		s = &r->s[i];
		pthread_mutex_lock(&s->elock);
		if (s->last_error != NULL) {
			metrics_append(&buf, &len, &cap,
			    "gradwatch_remote_write_last_error{target=\"");
			metrics_append_label(&buf, &len, &cap, s->t->name);
			metrics_append(&buf, &len, &cap, "\",error=\"");
			metrics_append_label(&buf, &len, &cap, s->last_error);
			metrics_append(&buf, &len, &cap, "\"} 1\n");
		}
		pthread_mutex_unlock(&s->elock);
	}
	return buf;
}

void
remote_stop(struct remote *r)
{
	size_t	i;

	if (r == NULL)
		return;
	atomic_store(&r->halt, 1);
	pthread_mutex_lock(&r->lock);
	r->stopping = 1;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	for (i = 0; i < r->n; i++)
		if (r->s[i].started) {
			pthread_join(r->s[i].thread, NULL);
			r->s[i].started = 0;
		}
}

void
remote_free(struct remote *r)
{
	struct remote_sender	*s;
	size_t			 i, k;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++) {
		s = &r->s[i];
		query_remote_close(s->qr);
		remote_enc_free(s->enc);
		remote_feed_span_free(&s->span);
		for (k = 0; k < REMOTE_SERIES_RUNS; k++)
			remote_series_free(s->series[k].ser, s->series[k].n);
		if (s->curl != NULL)
			curl_easy_cleanup(s->curl);
		curl_slist_free_all(s->hdrs);
		free(s->last_error);
		pthread_mutex_destroy(&s->elock);
	}
	free(r->s);
	free(r->acked);
	remote_feed_free(r->feed);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
