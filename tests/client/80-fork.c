/* SPDX-License-Identifier: MIT */
/*
 * fork(): a process that logs from two threads forks ten times while its
 * sender is busy (the fake daemon answers slowly).  In each child every
 * call on the inherited handle returns at once (GW_ECLOSED, or a neutral
 * value), gw_close too (it frees the child's copy: 85-fork-close); no
 * child deadlocks; a child can open its own client and send.  The fake
 * daemon then shows that every step of the parent arrived exactly once:
 * no child sent the parent's points.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gradwatch.h"
#include "gwt.h"

#define NSTEPS	600
#define NFORKS	10

static long
slow_ok(struct gwt_fake *f, int i, const struct gwt_req *r, char *headers,
    size_t hlen, char *body, size_t blen)
{
	(void)f;
	(void)i;
	(void)r;
	(void)headers;
	(void)hlen;
	gwt_sleep_ms(20);
	snprintf(body, blen, "{\"accepted\":1,\"health\":\"ok\",\"alerts\":[]}");
	return 200;
}

/* In the child: the inherited handle is inert.  0, or the first failed check. */
static int
child_checks(struct gw_client *gw, const char *url, int k)
{
	struct gw_options	 opt = { 0 };
	struct gw_client	*mine = NULL;
	struct gw_alert		 a[4];
	char			 run[32];
	double			 t0;
	int			 step;

	alarm(20);		/* a deadlock ends as SIGALRM */
	if (gw_loss(gw, 1, 1) != GW_ECLOSED)
		return 1;
	if (gw_layer(gw, "child", 1, 0) != GW_ECLOSED)
		return 2;
	if (gw_layer_grad(gw, 1, 0, 1) != GW_ECLOSED)
		return 3;
	if (gw_metric(gw, "m") != GW_ECLOSED)
		return 4;
	t0 = gwt_now();
	if (gw_flush(gw, 2000) != GW_ECLOSED)
		return 5;
	if (gw_alerts(gw, a, 4) != 0)
		return 6;
	(void)gw_health(gw);
	(void)gw_dropped(gw);
	if (gw_errmsg(gw)[0] == '\0')
		return 7;
#ifndef __SANITIZE_ADDRESS__
	/* It frees the copy: AddressSanitizer's free may wait (below). */
	if (gw_close(gw, 2000) != GW_ECLOSED)
		return 8;
#endif
	/* Each call above may wait 2 s: 1 s tells a wait from a busy machine. */
	if (gwt_now() - t0 > 1.0)
		return 9;	/* nothing waited */

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	/*
	 * ThreadSanitizer cannot start threads after a multi-threaded fork,
	 * and AddressSanitizer's allocator may be left locked in the child.
	 */
	(void)opt;
	(void)mine;
	(void)run;
	(void)step;
	(void)url;
	(void)k;
	return 0;
#endif
	/* A fresh client in the child works. */
	snprintf(run, sizeof run, "child-%d", k);
	opt.url = url;
	opt.run = run;
	opt.flush_interval_ms = 5;
	if (gw_open(&mine, &opt) != GW_OK)
		return 10;
	for (step = 0; step < 5; step++)
		if (gw_loss(mine, step, step) != GW_OK)
			return 11;
	if (gw_close(mine, 5000) != GW_OK)
		return 12;
	return 0;
}

struct bg {
	struct gw_client	*gw;
	int			 metric;
	int			 bad;
};

static void *
bg_main(void *arg)
{
	struct bg	*b = arg;
	int		 step;

	for (step = 0; step < NSTEPS; step++) {
		b->bad |= gw_metric_value(b->gw, step, b->metric, step) != GW_OK;
		if (step % 10 == 0)
			gwt_sleep_ms(1);
	}
	return NULL;
}

int
main(void)
{
	struct gwt_fake		 f;
	struct gw_options	 opt = { 0 };
	struct gw_client	*gw = NULL;
	struct bg		 b;
	pthread_t		 th;
	pid_t			 kids[NFORKS];
	json_t			*j, *s;
	size_t			 i;
	int			 seen[NSTEPS], step, k = 0, status, r, bad = 0;
	int			 hung = 0, child_bad = 0, dup = 0, missing = 0;
	int			 child_runs = 0;
	double			 end;

	memset(seen, 0, sizeof seen);
	if (!ok(gwt_fake_start(&f, slow_ok, NULL) == 0, "start a slow fake "
	    "daemon"))
		return done_testing();
	opt.url = f.url;
	opt.run = "parent";
	opt.flush_interval_ms = 2;
	if (!ok(gw_open(&gw, &opt) == GW_OK, "gw_open"))
		return done_testing();
	b.gw = gw;
	b.metric = gw_metric(gw, "bg");
	b.bad = 0;
	pthread_create(&th, NULL, bg_main, &b);
	for (step = 0; step < NSTEPS; step++) {
		bad |= gw_loss(gw, step, step) != GW_OK;
		if (step % 60 == 30 && k < NFORKS) {
			fflush(stdout);
			if ((kids[k] = fork()) == 0)
				_exit(child_checks(gw, f.url, k));
			k++;
		}
		if (step % 5 == 0)
			gwt_sleep_ms(1);
	}
	pthread_join(th, NULL);
	ok(!bad && !b.bad, "the parent logged from two threads while forking "
	    "%d times", k);
	for (r = 0; r < k; r++) {
		end = gwt_now() + 20;
		while (waitpid(kids[r], &status, WNOHANG) == 0) {
			if (gwt_now() > end) {
				kill(kids[r], SIGKILL);
				waitpid(kids[r], &status, 0);
				hung++;
				break;
			}
			gwt_sleep_ms(5);
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			child_bad++;
			diag("child %d: %s %d", r, WIFEXITED(status) ?
			    "failed checks" : "killed by signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) :
			    WTERMSIG(status));
		}
	}
	is_int(hung, 0, "no child hung");
	is_int(child_bad, 0, "in every child the inherited handle was inert "
	    "and a new one worked");
	is_int(gw_flush(gw, 20000), GW_OK, "the parent flushes");
	is_int(gw_close(gw, 5000), GW_OK, "and closes");

	pthread_mutex_lock(&f.lock);
	for (r = 0; r < f.nreqs; r++) {
		if (strstr(f.reqs[r].path, "/ingest") == NULL)
			continue;
		if ((j = json_loads(f.reqs[r].body, 0, NULL)) == NULL)
			continue;
		if (strcmp(json_string_value(json_object_get(j, "run")),
		    "parent") != 0) {
			child_runs++;
			json_decref(j);
			continue;
		}
		json_array_foreach(json_object_get(j, "steps"), i, s) {
			step = (int)json_integer_value(json_object_get(s,
			    "step"));
			if (step >= 0 && step < NSTEPS &&
			    json_object_get(s, "loss") != NULL)
				seen[step]++;
		}
		json_decref(j);
	}
	pthread_mutex_unlock(&f.lock);
	for (step = 0; step < NSTEPS; step++) {
		dup += seen[step] > 1;
		missing += seen[step] == 0;
	}
	is_int(missing, 0, "every loss of the parent arrived");
	is_int(dup, 0, "none twice: no child sent the parent's points");
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	ok(1, "# SKIP children open no client under the sanitizers");
	(void)child_runs;
#else
	ok(child_runs >= k, "the children's own clients sent (%d requests)",
	    child_runs);
#endif
	gwt_fake_stop(&f);
	return done_testing();
}
