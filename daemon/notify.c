/* SPDX-License-Identifier: MIT */
/*
 * notify: the notifier thread; see notify.h.  The thread owns the curl
 * handles, the outbox connection and every struct notify_target field
 * but the counters (_Atomic, read by /metrics on other threads); the
 * wake flag, the stop flag and the outcome list are {lock}.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "notice.h"
#include "notify.h"
#include "now.h"
#include "query_outbox.h"
#include "receiver.h"
#include "xmalloc.h"
#include "thread_name.h"

#define NOTIFY_REPLY_MAX	512	/* bytes of an answer kept for the log */
#define NOTIFY_POLL_MS		1000	/* longest sleep between checks */
#define NOTIFY_DEPTH_S		2.0	/* the outbox depth gauge's period */
#define NOTIFY_ACTIVE_S		86400.0	/* re-sent: runs seen this recently */
#define NOTIFY_HOLD_RESENDS	4	/* endsAt, in resend intervals */
#define NOTIFY_USER_AGENT	"gradwatchd/0.1.0"

struct notify_target {
	const struct receiver	*rcv;
	CURL			*easy;
	struct curl_slist	*headers;
	char			*body;		/* the request in flight */
	char			 reply[NOTIFY_REPLY_MAX + 1];
	size_t			 reply_len;
	char			 errbuf[CURL_ERROR_SIZE];
	int			 busy;		/* a request in flight */
	int64_t			 inflight;	/* its notice; 0: a re-send */
	int64_t			 cursor;	/* done up to this notice */
	int			 attempts;	/* of the notice at the head */
	double			 next_try;	/* monotonic seconds */
	double			 next_resend;	/* Alertmanager only */
	int			 dirty;		/* may owe notices */
	_Atomic uint64_t	 sent, failed, dropped;
	_Atomic int64_t		 depth;
};

struct notify {
	const struct config	*cfg;
	struct notify_target	*t;
	size_t			 nt;
	struct query_outbox	*qo;
	CURLM			*multi;
	pthread_t		 thread;
	int			 started;
	double			 next_depth;
	pthread_mutex_t		 lock;
	int			 woken;		/* {lock} */
	int			 stopping;	/* {lock} */
	struct notify_result	*res;		/* {lock} */
	size_t			 nres, capres;	/* {lock} */
};

static size_t
notify_reply_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct notify_target	*t = arg;
	size_t			 len = size * nmemb, room;

	room = NOTIFY_REPLY_MAX - t->reply_len;
	if (len < room)
		room = len;
	memcpy(t->reply + t->reply_len, data, room);
	t->reply_len += room;
	t->reply[t->reply_len] = '\0';
	return len;		/* the rest is read and forgotten */
}

/* Report an outcome to the writer (takes error). */
static void
notify_report(struct notify *n, int64_t id, int sent, int attempts,
    char *error)
{
	struct notify_result	*r;

	pthread_mutex_lock(&n->lock);
	if (n->nres == n->capres) {
		n->capres = n->capres == 0 ? 16 : n->capres * 2;
		n->res = xreallocarray(n->res, n->capres, sizeof *n->res);
	}
	r = &n->res[n->nres++];
	r->id = id;
	r->sent = sent;
	r->attempts = attempts;
	r->error = error;
	r->at = now_wall();
	pthread_mutex_unlock(&n->lock);
}

/* The request body of a stored notice for t's kind (allocated). */
static char *
notify_body(struct notify *n, struct notify_target *t, const char *notice_text)
{
	json_t	*notice, *arr;
	char	*out;

	if (t->rcv->kind == RECEIVER_WEBHOOK)
		return xstrdup(notice_text);
	if ((notice = json_loads(notice_text, 0, NULL)) == NULL)
		return NULL;
	if (t->rcv->kind == RECEIVER_SLACK)
		out = notice_slack(notice);
	else {
		arr = json_array();
		notice_alertmanager(arr, notice, now_wall(),
		    NOTIFY_HOLD_RESENDS * n->cfg->notify_resend);
		out = json_dumps(arr, JSON_COMPACT | JSON_REAL_PRECISION(17));
		json_decref(arr);
	}
	json_decref(notice);
	return out;
}

/* Send body (taken over) to t; inflight names the notice (0: none). */
static void
notify_send(struct notify *n, struct notify_target *t, int64_t inflight,
    char *body)
{
	CURL	*e = t->easy;
	long	 timeout_ms = (long)(n->cfg->notify_timeout * 1000);

	free(t->body);
	t->body = body;
	t->inflight = inflight;
	t->reply_len = 0;
	t->reply[0] = '\0';
	t->errbuf[0] = '\0';
	curl_easy_setopt(e, CURLOPT_URL, t->rcv->post_url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)strlen(t->body));
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, notify_reply_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	curl_easy_setopt(e, CURLOPT_USERAGENT, NOTIFY_USER_AGENT);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	if (curl_multi_add_handle(n->multi, e) != CURLM_OK) {
		log_warnx("notify: %s: cannot start a request", t->rcv->name);
		t->next_try = now_mono() + 1;
		return;
	}
	t->busy = 1;
}

/* Re-send an Alertmanager every firing alert it knows of. */
static int
notify_resend(struct notify *n, struct notify_target *t, double now)
{
	json_t	*notices, *arr;
	char	*cause = NULL, *body;
	double	 wall = now_wall();
	size_t	 i;

	t->next_resend = now + n->cfg->notify_resend;
	notices = query_outbox_firing(n->qo, t->rcv->name,
	    wall - NOTIFY_ACTIVE_S, n->cfg->external_url, wall, &cause);
	if (notices == NULL) {
		log_warnx("notify: %s", cause);
		free(cause);
		return 0;
	}
	if (json_array_size(notices) == 0) {
		json_decref(notices);
		return 0;
	}
	arr = json_array();
	for (i = 0; i < json_array_size(notices); i++)
		notice_alertmanager(arr, json_array_get(notices, i), wall,
		    NOTIFY_HOLD_RESENDS * n->cfg->notify_resend);
	json_decref(notices);
	body = json_dumps(arr, JSON_COMPACT | JSON_REAL_PRECISION(17));
	json_decref(arr);
	if (body == NULL)
		fatalx("notify: json_dumps failed");
	notify_send(n, t, 0, body);
	return 1;
}

/* Start t's next request if it has one due. */
static void
notify_poll_target(struct notify *n, struct notify_target *t, double now)
{
	char	*cause = NULL, *text = NULL, *body;
	int64_t	 id;
	int	 rc;

	if (t->busy || now < t->next_try)
		return;
	while (t->dirty) {
		rc = query_outbox_next(n->qo, t->rcv->name, t->cursor, &id,
		    &text, &cause);
		if (rc == -1) {
			log_warnx("notify: %s", cause);
			free(cause);
			t->next_try = now + 1;
			return;
		}
		if (rc == 0) {
			t->dirty = 0;
			break;
		}
		body = notify_body(n, t, text);
		free(text);
		if (body != NULL) {
			notify_send(n, t, id, body);
			return;
		}
		log_warnx("notify: %s: notice %lld is not JSON; dropped",
		    t->rcv->name, (long long)id);
		t->cursor = id;
		atomic_fetch_add(&t->dropped, 1);
		notify_report(n, id, 0, 0, xstrdup("stored notice not JSON"));
	}
	if (t->rcv->kind == RECEIVER_ALERTMANAGER && now >= t->next_resend)
		notify_resend(n, t, now);
}

/* 1 when a failure with this HTTP status (0: none) is worth a retry. */
static int
notify_is_retryable(long status)
{
	return status == 0 || status == 408 || status == 429 || status >= 500;
}

/* A request of t ended with curl's code rc. */
static void
notify_finish(struct notify *n, struct notify_target *t, CURLcode rc)
{
	long		 status = 0;
	curl_off_t	 retry_after = 0;
	double		 backoff, now = now_mono();
	char		*why = NULL;

	curl_multi_remove_handle(n->multi, t->easy);
	t->busy = 0;
	if (rc == CURLE_OK)
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	if (rc == CURLE_OK && status >= 200 && status < 300) {
		atomic_fetch_add(&t->sent, 1);
		if (t->attempts > 0)
			log_info("notify: %s: delivered after %d failed "
			    "attempts", t->rcv->name, t->attempts);
		if (t->inflight > 0) {
			t->cursor = t->inflight;
			notify_report(n, t->inflight, 1, t->attempts + 1, NULL);
		}
		t->attempts = 0;
		t->next_try = 0;
		return;
	}
	if (rc != CURLE_OK)
		xasprintf(&why, "%s", t->errbuf[0] != '\0' ? t->errbuf :
		    curl_easy_strerror(rc));
	else
		xasprintf(&why, "HTTP %ld: %.200s", status, t->reply);
	if (notify_is_retryable(status)) {
		atomic_fetch_add(&t->failed, 1);
		t->attempts++;
		backoff = ldexp(1.0, t->attempts < 30 ? t->attempts - 1 : 30);
		curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &retry_after);
		if ((double)retry_after > backoff)
			backoff = (double)retry_after;
		if (backoff > n->cfg->notify_max_backoff)
			backoff = n->cfg->notify_max_backoff;
		t->next_try = now + backoff;
		/* The first failure and then ever more rarely: 1, 2, 4, ... */
		if ((t->attempts & (t->attempts - 1)) == 0)
			log_warnx("notify: %s: %s: %s; attempt %d, next in %.0f s",
			    t->rcv->name, t->inflight > 0 ? "notice" :
			    "re-send", why, t->attempts, backoff);
		free(why);
		return;
	}
	atomic_fetch_add(&t->dropped, 1);
	log_warnx("notify: %s: %s %lld refused (%s); dropped", t->rcv->name,
	    t->inflight > 0 ? "notice" : "re-send", (long long)t->inflight, why);
	if (t->inflight > 0) {
		t->cursor = t->inflight;
		notify_report(n, t->inflight, 0, t->attempts + 1, why);
		why = NULL;
	}
	free(why);
	t->attempts = 0;
	t->next_try = 0;
}

static void
notify_collect(struct notify *n)
{
	struct notify_target	*t;
	CURLMsg			*m;
	int			 left;

	while ((m = curl_multi_info_read(n->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
		notify_finish(n, t, m->data.result);
	}
}

/* Milliseconds until something is due (at most NOTIFY_POLL_MS). */
static int
notify_sleep_ms(struct notify *n, double now)
{
	double	due = now + NOTIFY_POLL_MS / 1e3;
	size_t	i;

	for (i = 0; i < n->nt; i++) {
		struct notify_target	*t = &n->t[i];

		if (t->busy)
			continue;
		if (t->dirty && t->next_try < due)
			due = t->next_try;
		if (t->rcv->kind == RECEIVER_ALERTMANAGER && t->next_resend < due)
			due = t->next_resend > t->next_try ? t->next_resend :
			    t->next_try;
	}
	return due <= now ? 0 : (int)((due - now) * 1e3) + 1;
}

static void
notify_update_depth(struct notify *n, double now)
{
	size_t	i;

	if (now < n->next_depth)
		return;
	n->next_depth = now + NOTIFY_DEPTH_S;
	for (i = 0; i < n->nt; i++)
		atomic_store(&n->t[i].depth,
		    query_outbox_depth(n->qo, n->t[i].rcv->name));
}

static void *
notify_main(void *arg)
{
	struct notify	*n = arg;
	double		 now;
	size_t		 i;
	int		 running, woken, stopping;

	thread_name("gw-notify");
	for (;;) {
		pthread_mutex_lock(&n->lock);
		woken = n->woken;
		stopping = n->stopping;
		n->woken = 0;
		pthread_mutex_unlock(&n->lock);
		if (stopping)
			break;
		for (i = 0; woken && i < n->nt; i++)
			n->t[i].dirty = 1;
		now = now_mono();
		for (i = 0; i < n->nt; i++)
			notify_poll_target(n, &n->t[i], now);
		curl_multi_perform(n->multi, &running);
		notify_collect(n);
		notify_update_depth(n, now);
		curl_multi_poll(n->multi, NULL, 0, notify_sleep_ms(n,
		    now_mono()), NULL);
	}
	return NULL;
}

static struct curl_slist *
notify_headers(const struct receiver *r)
{
	struct curl_slist	*h = NULL, *next;
	char			*auth;

	h = curl_slist_append(h, "Content-Type: application/json");
	h = curl_slist_append(h, "Expect:");	/* no 100-continue round trip */
	if (h != NULL && r->bearer != NULL) {
		xasprintf(&auth, "Authorization: Bearer %s", r->bearer);
		next = curl_slist_append(h, auth);
		explicit_bzero(auth, strlen(auth));
		free(auth);
		h = next;
	}
	if (h == NULL)
		fatalx("notify: curl_slist_append failed");
	return h;
}

struct notify *
notify_start(const struct config *cfg, char **cause)
{
	struct notify	*n;
	size_t		 i;
	int		 rc;

	n = xcalloc(1, sizeof *n);
	n->cfg = cfg;
	pthread_mutex_init(&n->lock, NULL);
	if ((n->qo = query_outbox_open(cfg->db_path, cause)) == NULL)
		goto fail;
	if ((n->multi = curl_multi_init()) == NULL)
		fatalx("notify: curl_multi_init failed");
	n->nt = cfg->nreceivers;
	n->t = xcalloc(n->nt, sizeof *n->t);
	for (i = 0; i < n->nt; i++) {
		n->t[i].rcv = &cfg->receivers[i];
		n->t[i].dirty = 1;	/* what an earlier run left */
		if ((n->t[i].easy = curl_easy_init()) == NULL)
			fatalx("notify: curl_easy_init failed");
		n->t[i].headers = notify_headers(n->t[i].rcv);
	}
	if ((rc = pthread_create(&n->thread, NULL, notify_main, n)) != 0)
		fatalx("notify: pthread_create: %s", strerror(rc));
	n->started = 1;
	for (i = 0; i < n->nt; i++)
		log_info("notify: %s: %s %s, severity %s and above",
		    n->t[i].rcv->name, receiver_kind_name(n->t[i].rcv->kind),
		    n->t[i].rcv->kind == RECEIVER_SLACK ? "(URL not shown)" :
		    n->t[i].rcv->post_url, n->t[i].rcv->min_severity == 0 ?
		    "info" : n->t[i].rcv->min_severity == 1 ? "warning" :
		    "critical");
	return n;

fail:
	notify_free(n);
	return NULL;
}

void
notify_wake(struct notify *n)
{
	if (n == NULL)
		return;
	pthread_mutex_lock(&n->lock);
	n->woken = 1;
	pthread_mutex_unlock(&n->lock);
	curl_multi_wakeup(n->multi);
}

struct notify_result *
notify_results(struct notify *n, size_t *count)
{
	struct notify_result	*r;

	*count = 0;
	if (n == NULL)
		return NULL;
	pthread_mutex_lock(&n->lock);
	r = n->res;
	*count = n->nres;
	n->res = NULL;
	n->nres = n->capres = 0;
	pthread_mutex_unlock(&n->lock);
	return r;
}

void
notify_results_free(struct notify_result *r, size_t count)
{
	size_t	i;

	for (i = 0; i < count; i++)
		free(r[i].error);
	free(r);
}

char *
notify_metrics(struct notify *n)
{
	static const char *const results[] = { "sent", "failed", "dropped" };
	struct notify_target	*t;
	char			*buf;
	size_t			 len = 0, cap = 1024, i, r;
	uint64_t		 v;

	buf = xmalloc(cap);
	buf[0] = '\0';
	if (n == NULL)
		return buf;
	metrics_append(&buf, &len, &cap, "# HELP gradwatch_notifications_total "
	    "Requests to alert receivers by result: sent, failed (to be "
	    "retried), dropped (refused).\n"
	    "# TYPE gradwatch_notifications_total counter\n");
	for (i = 0; i < n->nt; i++)
		for (r = 0; r < 3; r++) {
			t = &n->t[i];
			v = r == 0 ? atomic_load(&t->sent) : r == 1 ?
			    atomic_load(&t->failed) : atomic_load(&t->dropped);
			metrics_append(&buf, &len, &cap,
			    "gradwatch_notifications_total{receiver=\"");
			metrics_append_label(&buf, &len, &cap, t->rcv->name);
			metrics_append(&buf, &len, &cap, "\",result=\"%s\"} %llu\n",
			    results[r], (unsigned long long)v);
		}
	metrics_append(&buf, &len, &cap, "# HELP gradwatch_notify_outbox_depth "
	    "Alert notices waiting for delivery.\n"
	    "# TYPE gradwatch_notify_outbox_depth gauge\n");
	for (i = 0; i < n->nt; i++) {
		metrics_append(&buf, &len, &cap,
		    "gradwatch_notify_outbox_depth{receiver=\"");
		metrics_append_label(&buf, &len, &cap, n->t[i].rcv->name);
		metrics_append(&buf, &len, &cap, "\"} %lld\n",
		    (long long)atomic_load(&n->t[i].depth));
	}
	return buf;
}

void
notify_stop(struct notify *n)
{
	if (n == NULL || !n->started)
		return;
	pthread_mutex_lock(&n->lock);
	n->stopping = 1;
	pthread_mutex_unlock(&n->lock);
	curl_multi_wakeup(n->multi);
	pthread_join(n->thread, NULL);
	n->started = 0;
}

void
notify_free(struct notify *n)
{
	size_t	i;

	if (n == NULL)
		return;
	notify_stop(n);
	for (i = 0; i < n->nt; i++) {
		if (n->t[i].busy)
			curl_multi_remove_handle(n->multi, n->t[i].easy);
		curl_easy_cleanup(n->t[i].easy);
		curl_slist_free_all(n->t[i].headers);
		free(n->t[i].body);
	}
	free(n->t);
	if (n->multi != NULL)
		curl_multi_cleanup(n->multi);
	query_outbox_close(n->qo);
	notify_results_free(n->res, n->nres);
	pthread_mutex_destroy(&n->lock);
	free(n);
}
