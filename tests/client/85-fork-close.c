/* SPDX-License-Identifier: MIT */
/*
 * fork(), then gw_close in the child: the child's copy of the parent's
 * handle is freed there.  Against a live daemon the parent logs, flushes
 * and lets its sender go idle, with the connection kept alive, then
 * forks.  In the child gw_close on the inherited handle returns
 * GW_ECLOSED at once and frees the copy: the memory in use drops by at
 * least its buffer (glibc's count, in plain builds), and under valgrind
 * (tests/client/leaks.sh) any leak or error fails the child's exit
 * status.  The child exits on its own (no lock or condition variable of
 * the vanished sender waited for), and the parent goes on: every step,
 * before the fork and after, arrives once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "gradwatch.h"
#include "gwt.h"

#define NSTEPS		200
#define NLAYERS		3
#define BUFFER		((size_t)1 << 20)	/* values: 16 bytes each at least */

/* Bytes malloc has handed out and not had back; -1 when unknown. */
static long long
in_use(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
	struct mallinfo2	mi = mallinfo2();

	return (long long)(mi.uordblks + mi.hblkhd);
#else
	return -1;
#endif
}

static struct gw_client	*gw;	/* the parent's handle */

/*
 * In the child: close the inherited handle, keeping no pointer to it
 * (what is then not freed is lost).  0, or the failed check.
 */
static int
child_close(void)
{
	struct gw_client	*c = gw;
	long long		 before, after;
	double			 t0, took;
	int			 rc;

	gw = NULL;
	alarm(20);		/* a wait for the parent's threads ends here */
	before = in_use();
	t0 = gwt_now();
	rc = gw_close(c, 5000);
	took = gwt_now() - t0;
	after = in_use();
	if (rc != GW_ECLOSED)
		return 1;
	if (took > (gwt_slow() ? 2.0 : 0.1))
		return 2;
	/* Valgrind and the sanitizers have their own malloc: no count. */
	if (!gwt_slow() && before != -1 &&
	    before - after < (long long)(BUFFER * 16))
		return 3;
	return 0;
}

static void
log_steps(struct gw_client *c, const int *layer, int from, int to, int *bad)
{
	int	step, k;

	for (step = from; step < to; step++) {
		*bad |= gw_loss(c, step, 1.0 / (step + 1)) != GW_OK;
		for (k = 0; k < NLAYERS; k++)
			*bad |= gw_layer_grad(c, step, layer[k],
			    step + k) != GW_OK;
	}
}

int
main(void)
{
	struct gwt_daemon	 d = { 0 };
	struct gw_options	 opt = { 0 };
	struct gwt_point	*got = NULL;
	size_t			 ngot = 0, i;
	char			 name[32];
	int			 layer[NLAYERS], seen[NSTEPS];
	int			 k, bad = 0, status = -1, ordered, dup = 0;
	int			 missing = 0, grads = 0;
	double			 end;
	pid_t			 pid, r;

	if (!ok(gwt_daemon_start(&d, NULL) == 0, "start gradwatchd"))
		return done_testing();
	opt.url = d.url;
	opt.run = "fork-close";
	opt.buffer_points = BUFFER;
	opt.flush_interval_ms = 60000;	/* the sender sleeps between flushes */
	if (!ok(gw_open(&gw, &opt) == GW_OK, "gw_open"))
		return done_testing();
	for (k = 0; k < NLAYERS; k++) {
		snprintf(name, sizeof name, "layer%d.weight", k);
		layer[k] = gw_layer(gw, name, 16, k);
	}
	log_steps(gw, layer, 0, NSTEPS / 2, &bad);
	is_int(gw_flush(gw, 10000), GW_OK, "the parent flushes before the "
	    "fork");
	gwt_sleep_ms(gwt_slow() ? 500 : 100);	/* its sender goes idle */

	fflush(stdout);
	if ((pid = fork()) == 0)
		_exit(child_close());	/* valgrind checks for leaks here */
	ok(pid > 0, "fork");
	end = gwt_now() + 30;
	while ((r = waitpid(pid, &status, WNOHANG)) == 0 && gwt_now() < end)
		gwt_sleep_ms(10);
	if (r == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	ok(r != 0, "the child did not hang");
	if (!ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "in the "
	    "child, gw_close on the inherited handle returned GW_ECLOSED at "
	    "once and freed the copy"))
		diag("child: %s %d (1: not GW_ECLOSED, 2: slow, 3: memory not "
		    "freed, 99: valgrind found a leak or an error)",
		    WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ?
		    WEXITSTATUS(status) : WTERMSIG(status));

	log_steps(gw, layer, NSTEPS / 2, NSTEPS, &bad);
	ok(!bad, "the parent logged %d steps", NSTEPS);
	is_int(gw_flush(gw, 10000), GW_OK, "the parent flushes after the "
	    "child freed its copy");
	is_int(gw_close(gw, 5000), GW_OK, "and closes");

	memset(seen, 0, sizeof seen);
	if (!ok(gwt_export(d.url, "fork-close", &got, &ngot, &ordered) == 0,
	    "export the run"))
		return done_testing();
	for (i = 0; i < ngot; i++) {
		if (strcmp(got[i].kind, "layer_grad") == 0)
			grads++;
		if (strcmp(got[i].kind, "loss") == 0 && got[i].step >= 0 &&
		    got[i].step < NSTEPS)
			seen[got[i].step]++;
	}
	for (k = 0; k < NSTEPS; k++) {
		dup += seen[k] > 1;
		missing += seen[k] == 0;
	}
	is_int(missing, 0, "every loss of the parent arrived");
	is_int(dup, 0, "none twice");
	is_int(grads, NSTEPS * NLAYERS, "and every layer's values");
	free(got);
	gwt_daemon_stop(&d, SIGTERM);
	return done_testing();
}
