/* SPDX-License-Identifier: MIT */
/*
 * Retries, against a fake daemon that answers as each case scripts it:
 * 503 with Retry-After (the retry waits that long and resends the same
 * body), 500s (exponential backoff, order kept), a dropped connection,
 * a refusal (400: recorded, counted as dropped and reported in the next
 * request, never resent), the health and alerts of answers, the token.
 * Then against the real daemon with a tiny queue: six clients at once
 * get 503s and still deliver every point.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradwatch.h"
#include "gwt.h"

static double
slack(void)
{
	return gwt_slow() ? 0.5 : 0.1;
}

static const char *ok_body = "{\"accepted\":1,\"health\":\"ok\",\"alerts\":[]}";

/* The steps of a recorded request body, appended to steps[]. */
static int
body_steps(const char *body, int64_t *steps, int max)
{
	json_t	*j, *s;
	size_t	 i;
	int	 n = 0;

	if ((j = json_loads(body, 0, NULL)) == NULL)
		return -1;
	json_array_foreach(json_object_get(j, "steps"), i, s)
		if (n < max)
			steps[n++] = json_integer_value(json_object_get(s,
			    "step"));
	json_decref(j);
	return n;
}

static long
body_dropped(const char *body)
{
	json_t	*j;
	long	 d;

	if ((j = json_loads(body, 0, NULL)) == NULL)
		return -1;
	d = (long)json_integer_value(json_object_get(j, "dropped"));
	json_decref(j);
	return d;
}

static struct gw_client *
client_for(struct gwt_fake *f, const char *run, const char *token)
{
	struct gw_options	 opt = { 0 };
	struct gw_client	*gw = NULL;

	opt.url = f->url;
	opt.run = run;
	opt.token = token;
	opt.flush_interval_ms = 1000;	/* requests go out on gw_flush */
	gw_open(&gw, &opt);
	return gw;
}

static long
cb_503_once(struct gwt_fake *f, int i, const struct gwt_req *r, char *headers,
    size_t hlen, char *body, size_t blen)
{
	(void)f;
	(void)r;
	if (i == 0) {
		snprintf(headers, hlen, "Retry-After: 1\r\n");
		snprintf(body, blen, "{\"error\":\"overloaded\",\"message\":"
		    "\"the writer is behind\"}");
		return 503;
	}
	snprintf(body, blen, "%s", ok_body);
	return 200;
}

static void
test_retry_after(void)
{
	struct gwt_fake		 f;
	struct gw_client	*gw;
	double			 dt;
	int			 step, rc;

	gwt_fake_start(&f, cb_503_once, NULL);
	gw = client_for(&f, "retry-after", NULL);
	for (step = 0; step < 10; step++)
		gw_loss(gw, step, step * 0.5);
	rc = gw_flush(gw, 10000);
	is_int(rc, GW_OK, "503 then 200: gw_flush OK");
	if (!ok(f.nreqs >= 2 && f.reqs[0].status == 503, "the first answer "
	    "was 503 (%d requests)", f.nreqs))
		goto out;
	dt = f.reqs[1].t - f.reqs[0].t;
	ok(dt >= 1.0 && dt < 1.1 + slack(), "the retry came after Retry-After:"
	    " 1 (%.3f s)", dt);
	ok(f.reqs[1].len == f.reqs[0].len && memcmp(f.reqs[1].body,
	    f.reqs[0].body, f.reqs[0].len) == 0, "the same body was resent");
	is_int(f.nreqs, 2, "and nothing else was needed");
out:
	gw_close(gw, 1000);
	gwt_fake_stop(&f);
}

static long
cb_500_twice(struct gwt_fake *f, int i, const struct gwt_req *r, char *headers,
    size_t hlen, char *body, size_t blen)
{
	(void)f;
	(void)r;
	(void)headers;
	(void)hlen;
	if (i < 2) {
		snprintf(body, blen, "{\"error\":\"internal\",\"message\":\"boom\"}");
		return 500;
	}
	snprintf(body, blen, "%s", ok_body);
	return 200;
}

static void
test_backoff_order(void)
{
	struct gwt_fake		 f;
	struct gw_client	*gw;
	int64_t			 steps[1000];
	double			 d1, d2;
	int			 step, i, n = 0, k, in_order = 1;

	gwt_fake_start(&f, cb_500_twice, NULL);
	gw = client_for(&f, "backoff", NULL);
	for (step = 0; step < 350; step++)
		gw_loss(gw, step, step);
	is_int(gw_flush(gw, 10000), GW_OK, "500, 500, then 200: gw_flush OK");
	if (!ok(f.nreqs >= 5, "at least 5 requests (%d)", f.nreqs))
		goto out;
	d1 = f.reqs[1].t - f.reqs[0].t;
	d2 = f.reqs[2].t - f.reqs[1].t;
	ok(d1 >= 0.05 && d1 < 0.1 + slack(), "first retry after 50-100 ms "
	    "(%.3f s)", d1);
	ok(d2 >= 0.1 && d2 < 0.2 + slack(), "second retry after 100-200 ms "
	    "(%.3f s)", d2);
	ok(strcmp(f.reqs[0].body, f.reqs[1].body) == 0 &&
	    strcmp(f.reqs[1].body, f.reqs[2].body) == 0,
	    "the failed request was resent, not a later one");
	for (i = 2; i < f.nreqs; i++) {
		k = body_steps(f.reqs[i].body, steps + n, 1000 - n);
		if (k < 0)
			in_order = 0;
		else
			n += k;
		ok(k > 0 && k <= 100, "request %d carries %d steps (at most "
		    "100)", i, k);
	}
	for (i = 0; i < n; i++)
		if (steps[i] != i)
			in_order = 0;
	ok(in_order && n == 350, "accepted requests carry steps 0..349 in "
	    "order, once each (%d)", n);
	is_int(f.nconns, 1, "every request went over one kept-alive "
	    "connection");
out:
	gw_close(gw, 1000);
	gwt_fake_stop(&f);
}

static long
cb_drop_once(struct gwt_fake *f, int i, const struct gwt_req *r, char *headers,
    size_t hlen, char *body, size_t blen)
{
	(void)f;
	(void)r;
	(void)headers;
	(void)hlen;
	if (i == 0)
		return 0;	/* close the connection without an answer */
	snprintf(body, blen, "%s", ok_body);
	return 200;
}

static void
test_dropped_connection(void)
{
	struct gwt_fake		 f;
	struct gw_client	*gw;

	gwt_fake_start(&f, cb_drop_once, NULL);
	gw = client_for(&f, "dropped-conn", NULL);
	gw_loss(gw, 0, 1);
	gw_loss(gw, 1, 2);
	is_int(gw_flush(gw, 5000), GW_OK, "connection closed without an "
	    "answer: retried");
	ok(f.nreqs == 2 && f.nconns == 2 && strcmp(f.reqs[0].body,
	    f.reqs[1].body) == 0, "the same body again on a new connection "
	    "(%d requests, %d connections)", f.nreqs, f.nconns);
	gw_close(gw, 1000);
	gwt_fake_stop(&f);
}

static long
cb_refuse_once(struct gwt_fake *f, int i, const struct gwt_req *r,
    char *headers, size_t hlen, char *body, size_t blen)
{
	(void)f;
	(void)headers;
	(void)hlen;
	if (i == 0 && strstr(r->path, "/ingest") != NULL) {
		snprintf(body, blen, "{\"error\":\"bad_request\",\"message\":"
		    "\"steps[0]: unknown key \\\"x\\\"\"}");
		return 400;
	}
	snprintf(body, blen, "%s", ok_body);
	return 200;
}

static void
test_refused(void)
{
	struct gwt_fake		 f;
	struct gw_client	*gw;
	int64_t			 steps[100];
	int			 step, rc, n, i, ingests = 0;

	gwt_fake_start(&f, cb_refuse_once, NULL);
	gw = client_for(&f, "refused", NULL);
	for (step = 0; step < 10; step++)
		gw_loss(gw, step, step);
	rc = gw_flush(gw, 5000);
	is_int(rc, GW_EREFUSED, "a 400 makes gw_flush EREFUSED");
	ok(strstr(gw_errmsg(gw), "refused") != NULL &&
	    strstr(gw_errmsg(gw), "unknown key") != NULL, "gw_errmsg has the "
	    "daemon's reason (%s)", gw_errmsg(gw));
	n = f.nreqs > 0 ? body_steps(f.reqs[0].body, steps, 100) : -1;
	is_int((long long)gw_dropped(gw), n, "the refused values count as "
	    "dropped");
	gw_loss(gw, 10, 10);
	is_int(gw_flush(gw, 5000), GW_OK, "the next request goes through");
	if (ok(f.nreqs == 2, "the refused request was not sent again (%d)",
	    f.nreqs))
		is_int(body_dropped(f.reqs[1].body), n, "and the next request "
		    "reports them in \"dropped\"");
	gw_close(gw, 1000);
	for (i = 0; i < f.nreqs; i++)
		ingests += strstr(f.reqs[i].path, "/ingest") != NULL;
	ok(f.nreqs >= 1 && strstr(f.reqs[f.nreqs - 1].path,
	    "/api/v1/runs/refused/finish") != NULL &&
	    strstr(f.reqs[f.nreqs - 1].body, "\"finished\"") != NULL,
	    "gw_close posted finish (%s)", f.nreqs > 0 ?
	    f.reqs[f.nreqs - 1].path : "");
	is_int(ingests, 2, "two ingest requests in all");
	gwt_fake_stop(&f);
}

static long
cb_health(struct gwt_fake *f, int i, const struct gwt_req *r, char *headers,
    size_t hlen, char *body, size_t blen)
{
	char	msg[400];

	(void)f;
	(void)r;
	(void)headers;
	(void)hlen;
	memset(msg, 'm', 300);
	msg[0] = 'A';
	memcpy(msg + 254, "\xc3\xa9", 2);	/* a character across the cut */
	msg[300] = '\0';
	if (i == 0)
		snprintf(body, blen, "{\"accepted\":3,\"health\":\"critical\","
		    "\"alerts\":[{\"id\":1,\"run\":\"h\",\"kind\":\"nonfinite\","
		    "\"severity\":\"critical\",\"state\":\"firing\",\"series\":"
		    "\"fc1.weight\",\"onset_step\":5,\"fire_step\":6,\"value\":"
		    "\"NaN\",\"message\":\"NaN in fc1.weight\"},{\"kind\":"
		    "\"grad_explosion\",\"severity\":\"warning\",\"series\":null,"
		    "\"onset_step\":null,\"fire_step\":9,\"message\":\"%s\"}]}",
		    msg);
	else
		snprintf(body, blen, "%s", ok_body);
	return 200;
}

static void
test_health(void)
{
	struct gwt_fake		 f;
	struct gw_client	*gw;
	struct gw_alert		 a[4];
	int			 n;

	gwt_fake_start(&f, cb_health, NULL);
	gw = client_for(&f, "health", "s3cret");
	gw_loss(gw, 0, 1);
	is_int(gw_flush(gw, 5000), GW_OK, "flush");
	is_int(gw_health(gw), GW_HEALTH_CRITICAL, "gw_health: critical, as "
	    "answered");
	memset(a, 0x55, sizeof a);
	is_int(gw_alerts(gw, a, 1), 2, "gw_alerts counts every firing alert");
	ok(strcmp(a[0].kind, "nonfinite") == 0 && a[1].kind[0] == 0x55,
	    "and copies only as many as asked");
	n = gw_alerts(gw, a, 4);
	ok(n == 2 && strcmp(a[0].severity, "critical") == 0 &&
	    strcmp(a[0].series, "fc1.weight") == 0 && a[0].onset_step == 5 &&
	    a[0].fire_step == 6 && strcmp(a[0].message, "NaN in fc1.weight") ==
	    0, "first alert's fields");
	ok(strcmp(a[1].kind, "grad_explosion") == 0 && a[1].series[0] == '\0' &&
	    a[1].onset_step == -1 && a[1].fire_step == 9, "a null series is "
	    "\"\", a null onset -1");
	ok(strlen(a[1].message) == 254 && a[1].message[0] == 'A',
	    "a long message is cut before a split character (%zu bytes)",
	    strlen(a[1].message));
	ok(f.nreqs > 0 && strstr(f.reqs[0].headers,
	    "Authorization: Bearer s3cret\r\n") != NULL, "the token goes in "
	    "an Authorization header");
	gw_loss(gw, 1, 1);
	gw_flush(gw, 5000);
	is_int(gw_health(gw), GW_HEALTH_OK, "the next answer's health");
	is_int(gw_alerts(gw, a, 4), 0, "and its alerts (none)");
	gw_close(gw, 1000);
	gwt_fake_stop(&f);
}

/* ---- the real daemon, overloaded ---------------------------------------- */

#define NLOADERS	6
#define NLOAD_LAYERS	50

struct loader {
	const char		*url;
	int			 id;
	int			 nsteps;
	int			 rc;
	uint64_t		 dropped;
};

static void *
loader_main(void *arg)
{
	struct loader		*ld = arg;
	struct gw_options	 opt = { 0 };
	struct gw_client	*gw = NULL;
	char			 run[32], name[32];
	int			 layer[NLOAD_LAYERS], k, step;

	snprintf(run, sizeof run, "load-%d", ld->id);
	opt.url = ld->url;
	opt.run = run;
	opt.flush_interval_ms = 5;
	gw_open(&gw, &opt);
	for (k = 0; k < NLOAD_LAYERS; k++) {
		snprintf(name, sizeof name, "layer%d", k);
		layer[k] = gw_layer(gw, name, -1, k);
	}
	for (step = 0; step < ld->nsteps; step++) {
		gw_loss(gw, step, step);
		for (k = 0; k < NLOAD_LAYERS; k++)
			gw_layer_grad(gw, step, layer[k], step + k);
	}
	ld->rc = gw_flush(gw, 60000);
	ld->dropped = gw_dropped(gw);
	gw_close(gw, 5000);
	return NULL;
}

static void
test_overloaded_daemon(void)
{
	struct gwt_daemon	 d = { 0 };
	struct loader		 ld[NLOADERS];
	pthread_t		 t[NLOADERS];
	char			 path[64];
	json_t			*j;
	int			 i, all = 1, nsteps = gwt_slow() ? 200 : 400;
	long long		 n503;
	char			 lock_cmd[2048], locked[600];

	if (!ok(gwt_daemon_start(&d, "queue-points 1000\n") == 0,
	    "start a daemon with queue-points 1000"))
		return;
	/*
	 * Hold the database's write lock from outside for 1.5 s, so that the
	 * writer waits and its queue fills whatever the machine's speed.
	 */
	snprintf(lock_cmd, sizeof lock_cmd, "printf 'BEGIN IMMEDIATE;\\n"
	    ".shell touch %s.locked; sleep 1.5\\nCOMMIT;\\n' | "
	    "sqlite3 %s >/dev/null 2>&1 &", d.db, d.db);
	snprintf(locked, sizeof locked, "%s.locked", d.db);
	unlink(locked);
	if (system(lock_cmd) != 0)
		diag("could not start sqlite3 to hold the lock");
	for (i = 0; i < 500 && access(locked, F_OK) != 0; i++)
		gwt_sleep_ms(10);
	ok(access(locked, F_OK) == 0, "another process holds the write lock");
	for (i = 0; i < NLOADERS; i++) {
		ld[i] = (struct loader){ d.url, i, nsteps, -99, 0 };
		pthread_create(&t[i], NULL, loader_main, &ld[i]);
	}
	for (i = 0; i < NLOADERS; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < NLOADERS; i++) {
		all &= ld[i].rc == GW_OK && ld[i].dropped == 0;
		snprintf(path, sizeof path, "/api/v1/runs/load-%d", i);
		j = gwt_get_json(d.url, path);
		if (json_integer_value(json_object_get(j, "points")) !=
		    (json_int_t)nsteps * (NLOAD_LAYERS + 2)) {
			all = 0;
			diag("load-%d: %lld points, want %d", i,
			    (long long)json_integer_value(json_object_get(j,
			    "points")), nsteps * (NLOAD_LAYERS + 2));
		}
		json_decref(j);
	}
	n503 = gwt_metric(d.url, "\ngradwatch_ingest_overloaded_total ");
	ok(n503 > 0, "the daemon answered 503 (%lld times)", n503);
	ok(all, "%d clients at once: every point stored, none dropped",
	    NLOADERS);
	gwt_daemon_stop(&d, SIGTERM);
}

int
main(void)
{
	test_retry_after();
	test_backoff_order();
	test_dropped_connection();
	test_refused();
	test_health();
	test_overloaded_daemon();
	return done_testing();
}
