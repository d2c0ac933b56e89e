/* SPDX-License-Identifier: MIT */
/*
 * bench/client: what libgradwatch costs the training loop, and what it
 * delivers.  Four phases, each printing its figures and a RESULT line:
 *
 *  hotpath  10 million gw_layer_grad() calls into a client whose daemon
 *           is up, each timed alone with the TSC (lfence; rdtsc around
 *           the call, minus the median cost of an empty timed pair),
 *           and 10 million more timed in batches of 32 (this TSC ticks
 *           in steps of ~10 ns, too coarse for one call's median);
 *           beside a bare array store and an fprintf to a buffered FILE
 *           timed the same ways in the same rounds.  The median comes
 *           from the batches, p99.9 and the max from single calls.  The
 *           calls come in rounds of 500,000 with a gw_flush (not timed)
 *           between, so the buffer never fills: every call is the
 *           normal path.
 *  down     10 million calls into a client whose daemon does not exist:
 *           the buffer fills, the rest is dropped; the slowest call.
 *  e2e      one client logging a 200-layer model as fast as it can for
 *           a few seconds (a gw_flush every 2,000 steps so nothing is
 *           dropped): points per second acknowledged by the daemon, and
 *           the CPU of the sender thread and of the daemon (--pid).
 *  cpu      the same model at 100 steps a second for 10 s: the sender
 *           thread's CPU share (from /proc/self/task/TID/schedstat).
 *
 * Runs on one thread besides the library's own; x86-64 for the TSC.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "gradwatch.h"

#define HIST_MAX	(1u << 16)	/* cycles kept exactly; beyond, counted */
#define ROUND		500000
#define BATCH		32	/* calls timed together for the median */

struct hist {
	uint64_t	 bins[HIST_MAX];
	uint64_t	 n;
	uint64_t	 over_1ms;
	uint64_t	 over_hist;
	uint64_t	 max;		/* cycles */
	double		 sum;
};

static double	 tsc_hz;
static uint64_t	 tsc_overhead;
static double	 sink_store[1 << 20];
static FILE	*sink_file;

static double
now_s(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline uint64_t
tsc(void)
{
	uint64_t	t;

	_mm_lfence();
	t = __rdtsc();
	_mm_lfence();
	return t;
}

static void
calibrate(void)
{
	struct hist	*h;
	uint64_t	 t0, t1, i, acc;
	double		 s0, s1;

	s0 = now_s();
	t0 = __rdtsc();
	while (now_s() - s0 < 0.2)
		;
	t1 = __rdtsc();
	s1 = now_s();
	tsc_hz = (double)(t1 - t0) / (s1 - s0);

	/* The median cost of an empty timed pair, subtracted from samples. */
	if ((h = calloc(1, sizeof *h)) == NULL)
		exit(1);
	for (i = 0; i < 1000000; i++) {
		t0 = tsc();
		t1 = tsc();
		if (t1 - t0 < HIST_MAX)
			h->bins[t1 - t0]++;
	}
	for (i = 0, acc = 0; i < HIST_MAX; i++)
		if ((acc += h->bins[i]) >= 500000)
			break;
	tsc_overhead = i;
	free(h);
}

static double
ns(double cycles)
{
	return cycles * 1e9 / tsc_hz;
}

static void
hist_add(struct hist *h, uint64_t cycles)
{
	cycles = cycles > tsc_overhead ? cycles - tsc_overhead : 0;
	h->n++;
	h->sum += (double)cycles;
	if (cycles > h->max)
		h->max = cycles;
	if (ns((double)cycles) > 1e6)
		h->over_1ms++;
	if (cycles < HIST_MAX)
		h->bins[cycles]++;
	else
		h->over_hist++;
}

/* The q-quantile in ns per call (samples of per calls each). */
static double
hist_q(const struct hist *h, double q, int per)
{
	uint64_t	want = (uint64_t)ceil(q * (double)h->n), acc = 0, i;

	for (i = 0; i < HIST_MAX; i++)
		if ((acc += h->bins[i]) >= want)
			return ns((double)i) / per;
	return ns((double)h->max) / per;
}

/* One line: the median from batches, the tail from single calls. */
static void
hist_print(const char *what, const struct hist *single,
    const struct hist *batch)
{
	printf("  %-24s median %6.2f ns (batches; single %4.0f)  p99.9 "
	    "%6.0f ns  p99.99 %6.0f ns  max %8.0f ns  >1 ms: %llu\n", what,
	    hist_q(batch, 0.5, BATCH), hist_q(single, 0.5, 1),
	    hist_q(single, 0.999, 1), hist_q(single, 0.9999, 1),
	    ns((double)single->max), (unsigned long long)single->over_1ms);
}

__attribute__((noinline)) static int
bare_store(int64_t step, int layer, double v)
{
	sink_store[(step * 200 + layer) & ((1 << 20) - 1)] = v;
	return 0;
}

__attribute__((noinline)) static int
file_print(int64_t step, int layer, double v)
{
	return fprintf(sink_file, "%lld %d %.17g\n", (long long)step, layer, v);
}

static struct gw_client *
open_client(const char *url, const char *run, size_t buffer)
{
	struct gw_options	 opt = { 0 };
	struct gw_client	*gw = NULL;
	int			 rc;

	opt.url = url;
	opt.run = run;
	opt.project = "bench";
	opt.buffer_points = buffer;
	if ((rc = gw_open(&gw, &opt)) != GW_OK) {
		fprintf(stderr, "client: gw_open: %s: %s\n", gw_strerror(rc),
		    gw_errmsg(NULL));
		exit(1);
	}
	return gw;
}

static void
register_layers(struct gw_client *gw, int *layer, int n)
{
	char	name[64];
	int	k;

	for (k = 0; k < n; k++) {
		snprintf(name, sizeof name, "blocks.%d.weight", k);
		layer[k] = gw_layer(gw, name, 4096, k);
	}
}

/*
 * Time CALL over n calls two ways: each call alone (into single), and
 * in batches of BATCH calls (the batch's cycles into batch).  The TSC of
 * this machine moves in steps of about 21 cycles (10 ns), so a single
 * call's time is only good to 10 ns: batches give the median, single
 * calls the tail.  i, step, k and v are the loop's variables.
 */
#define TIME_PASS(n, single, batch, CALL) do {				\
	uint64_t	 _t0, _t1, _j;					\
	for (i = 0; i < (n); i++) {					\
		step = (int64_t)(seq / (uint64_t)nlayers);		\
		k = (int)(seq++ % (uint64_t)nlayers);			\
		v = 1.0 + (double)(i & 1023) * 1e-3;			\
		_t0 = tsc();						\
		CALL;							\
		_t1 = tsc();						\
		hist_add((single), _t1 - _t0);				\
	}								\
	for (i = 0; i < (n); i += BATCH) {				\
		_t0 = tsc();						\
		for (_j = 0; _j < BATCH; _j++) {			\
			step = (int64_t)(seq / (uint64_t)nlayers);	\
			k = (int)(seq++ % (uint64_t)nlayers);		\
			v = 1.0 + (double)(_j & 1023) * 1e-3;		\
			CALL;						\
		}							\
		_t1 = tsc();						\
		hist_add((batch), _t1 - _t0);				\
	}								\
} while (0)

/* Phase 1: the hot path beside the two baselines, in the same rounds. */
static void
phase_hotpath(const char *url, uint64_t calls, int nlayers)
{
	static struct hist	 hg, hs, hf, bg, bs, bf;
	struct gw_client	*gw;
	int			 layer[1024], k, rc;
	uint64_t		 i, r, seq = 0, bad = 0;
	int64_t			 step;
	double			 v;
	char			*fbuf;

	gw = open_client(url, "bench-hotpath", 0);
	register_layers(gw, layer, nlayers);
	if ((sink_file = fopen("/dev/null", "w")) == NULL ||
	    (fbuf = malloc(1 << 20)) == NULL)
		exit(1);
	setvbuf(sink_file, fbuf, _IOFBF, 1 << 20);
	for (r = 0; r * ROUND < calls; r++) {
		TIME_PASS(ROUND, &hs, &bs, bare_store(step, layer[k], v));
		TIME_PASS(ROUND, &hg, &bg,
		    bad += gw_layer_grad(gw, step, layer[k], v) != GW_OK);
		TIME_PASS(ROUND, &hf, &bf, file_print(step, layer[k], v));
		/* Not timed: let the sender catch up so the buffer never fills. */
		if ((rc = gw_flush(gw, 60000)) != GW_OK)
			fprintf(stderr, "client: gw_flush: %s\n",
			    gw_strerror(rc));
	}
	printf("hotpath: %llu calls of each, timed one by one, and %llu more "
	    "in batches of %d\n  (TSC %.3f GHz, ticking in steps of ~10 ns; "
	    "an empty timed pair, %llu cycles, subtracted)\n",
	    (unsigned long long)hg.n, (unsigned long long)bg.n * BATCH, BATCH,
	    tsc_hz / 1e9, (unsigned long long)tsc_overhead);
	hist_print("bare array store", &hs, &bs);
	hist_print("gw_layer_grad", &hg, &bg);
	hist_print("fprintf to a FILE", &hf, &bf);
	printf("  gw_layer_grad calls not GW_OK: %llu; dropped %llu\n",
	    (unsigned long long)bad, (unsigned long long)gw_dropped(gw));
	printf("RESULT bench=client phase=hotpath calls=%llu gw_median_ns=%.2f "
	    "gw_p999_ns=%.1f gw_max_ns=%.0f gw_over_1ms=%llu "
	    "store_median_ns=%.2f store_p999_ns=%.1f fprintf_median_ns=%.1f "
	    "fprintf_p999_ns=%.1f not_ok=%llu\n", (unsigned long long)hg.n,
	    hist_q(&bg, 0.5, BATCH), hist_q(&hg, 0.999, 1),
	    ns((double)hg.max), (unsigned long long)hg.over_1ms,
	    hist_q(&bs, 0.5, BATCH), hist_q(&hs, 0.999, 1),
	    hist_q(&bf, 0.5, BATCH), hist_q(&hf, 0.999, 1),
	    (unsigned long long)bad);
	gw_close(gw, 10000);
	fclose(sink_file);
	free(fbuf);
}

/* Phase 2: the daemon is not there; the buffer fills, then drops. */
static void
phase_down(uint64_t calls, int nlayers)
{
	static struct hist	 h, b;
	struct rusage		 ru0, ru1;
	struct gw_client	*gw;
	int			 layer[1024], k;
	uint64_t		 i, seq = 0, full = 0;
	int64_t			 step;
	double			 v;

	/* Port 9 on loopback: nothing listens, connecting is refused. */
	gw = open_client("http://127.0.0.1:9", "bench-down", 0);
	register_layers(gw, layer, nlayers);
	getrusage(RUSAGE_THREAD, &ru0);
	TIME_PASS(calls, &h, &b,
	    full += gw_layer_grad(gw, step, layer[k], v) == GW_EFULL);
	getrusage(RUSAGE_THREAD, &ru1);
	printf("down: %llu + %llu calls with no daemon (%llu dropped: the "
	    "buffer holds 1048576)\n", (unsigned long long)h.n,
	    (unsigned long long)b.n * BATCH, (unsigned long long)full);
	hist_print("gw_layer_grad, no daemon", &h, &b);
	/* A call that waited for anything would be a voluntary switch. */
	printf("  this thread meanwhile: %ld voluntary context switches "
	    "(it never waited), %ld involuntary (preempted)\n",
	    ru1.ru_nvcsw - ru0.ru_nvcsw, ru1.ru_nivcsw - ru0.ru_nivcsw);
	printf("RESULT bench=client phase=down calls=%llu median_ns=%.2f "
	    "p999_ns=%.1f max_ns=%.0f over_1ms=%llu dropped=%llu nvcsw=%ld "
	    "nivcsw=%ld\n", (unsigned long long)h.n, hist_q(&b, 0.5, BATCH),
	    hist_q(&h, 0.999, 1), ns((double)h.max),
	    (unsigned long long)h.over_1ms, (unsigned long long)full,
	    ru1.ru_nvcsw - ru0.ru_nvcsw, ru1.ru_nivcsw - ru0.ru_nivcsw);
	gw_close(gw, 0);
}

/* The thread the library names gw-sender (the only client open). */
static int
sender_tid(void)
{
	char		 path[300], comm[64];
	struct dirent	*de;
	DIR		*d;
	FILE		*f;
	int		 tid = -1;

	if ((d = opendir("/proc/self/task")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/comm",
		    de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(comm, sizeof comm, f) != NULL &&
		    strncmp(comm, "gw-sender", 9) == 0)
			tid = atoi(de->d_name);
		fclose(f);
	}
	closedir(d);
	return tid;
}

/* CPU seconds of a thread (schedstat, ns) or a process (stat, ticks). */
static double
cpu_of(const char *stat_path, const char *schedstat_path)
{
	unsigned long long	 ut = 0, st = 0, run;
	char			 buf[2048], *p;
	FILE			*f;
	int			 i;

	if (schedstat_path != NULL && (f = fopen(schedstat_path, "r")) != NULL) {
		i = fscanf(f, "%llu", &run);
		fclose(f);
		if (i == 1)
			return (double)run / 1e9;
	}
	if ((f = fopen(stat_path, "r")) == NULL)
		return -1;
	if (fgets(buf, sizeof buf, f) == NULL || (p = strrchr(buf, ')')) ==
	    NULL) {
		fclose(f);
		return -1;
	}
	fclose(f);
	/* After "pid (comm)": state is field 3; utime 14, stime 15. */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
	    "%llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double
sender_cpu(int tid)
{
	char	stat[128], sched[128];

	snprintf(stat, sizeof stat, "/proc/self/task/%d/stat", tid);
	snprintf(sched, sizeof sched, "/proc/self/task/%d/schedstat", tid);
	return cpu_of(stat, sched);
}

static double
daemon_cpu(int pid)
{
	char	stat[128];

	if (pid <= 0)
		return -1;
	snprintf(stat, sizeof stat, "/proc/%d/stat", pid);
	return cpu_of(stat, NULL);
}

/* Log one step of the model: loss, grad_norm, lr and every layer. */
static void
log_step(struct gw_client *gw, int64_t step, const int *layer, int n)
{
	int	k;

	gw_loss(gw, step, 2.0 / (double)(step + 1));
	gw_grad_norm(gw, step, 1.5);
	gw_lr(gw, step, 1e-3);
	for (k = 0; k < n; k++)
		gw_layer_grad(gw, step, layer[k], 0.01 * (k + 1) +
		    (double)(step % 97) * 1e-4);
}

/* Phase 3: as fast as one client goes. */
static void
phase_e2e(const char *url, int pid, double seconds, int nlayers)
{
	struct gw_client	*gw;
	int			 layer[1024], tid, rc = GW_OK;
	int64_t			 step = 0;
	double			 t0, t1, s0, s1, d0, d1, per;

	gw = open_client(url, "bench-e2e", 0);
	register_layers(gw, layer, nlayers);
	tid = sender_tid();
	per = nlayers + 3;
	t0 = now_s();
	s0 = sender_cpu(tid);
	d0 = daemon_cpu(pid);
	while (now_s() - t0 < seconds) {
		log_step(gw, step, layer, nlayers);
		if (++step % 2000 == 0 && (rc = gw_flush(gw, 60000)) != GW_OK)
			break;
	}
	if (rc == GW_OK)
		rc = gw_flush(gw, 60000);
	t1 = now_s();
	s1 = sender_cpu(tid);
	d1 = daemon_cpu(pid);
	printf("e2e: %lld steps x %.0f values in %.2f s, one client, one "
	    "connection: %.0f points/s acknowledged (flush: %s, dropped %llu)\n",
	    (long long)step, per, t1 - t0, (double)step * per / (t1 - t0),
	    gw_strerror(rc), (unsigned long long)gw_dropped(gw));
	printf("  sender thread CPU %.0f%% of a core", 100 * (s1 - s0) /
	    (t1 - t0));
	if (pid > 0)
		printf(", daemon CPU %.0f%% (2 cores = 200%%)", 100 * (d1 - d0) /
		    (t1 - t0));
	printf("; sender %.0f ns a point\n", (s1 - s0) * 1e9 /
	    ((double)step * per));
	printf("RESULT bench=client phase=e2e points_per_s=%.0f seconds=%.2f "
	    "sender_cpu_pct=%.1f daemon_cpu_pct=%.1f sender_ns_per_point=%.1f "
	    "flush=%d dropped=%llu\n", (double)step * per / (t1 - t0), t1 - t0,
	    100 * (s1 - s0) / (t1 - t0), pid > 0 ? 100 * (d1 - d0) /
	    (t1 - t0) : -1.0, (s1 - s0) * 1e9 / ((double)step * per), rc,
	    (unsigned long long)gw_dropped(gw));
	gw_close(gw, 10000);
}

/* Phase 4: a paced model; the sender's share of a core. */
static void
phase_cpu(const char *url, double seconds, int nlayers, int rate)
{
	struct gw_client	*gw;
	struct timespec		 next;
	int			 layer[1024], tid, rc;
	int64_t			 step = 0;
	double			 t0, t1, s0, s1;
	long			 period = 1000000000L / rate;

	gw = open_client(url, "bench-cpu", 0);
	register_layers(gw, layer, nlayers);
	tid = sender_tid();
	t0 = now_s();
	s0 = sender_cpu(tid);
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (now_s() - t0 < seconds) {
		log_step(gw, step++, layer, nlayers);
		next.tv_nsec += period;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next,
		    NULL) == EINTR)
			;
	}
	t1 = now_s();
	s1 = sender_cpu(tid);
	rc = gw_flush(gw, 10000);
	printf("cpu: %d layers at %d steps/s for %.1f s (%.0f values/s): "
	    "sender thread %.2f%% of a core (%.3f s CPU; flush %s)\n", nlayers,
	    rate, t1 - t0, (double)step * (nlayers + 3) / (t1 - t0),
	    100 * (s1 - s0) / (t1 - t0), s1 - s0, gw_strerror(rc));
	printf("RESULT bench=client phase=cpu layers=%d rate=%d seconds=%.1f "
	    "sender_cpu_pct=%.3f\n", nlayers, rate, t1 - t0,
	    100 * (s1 - s0) / (t1 - t0));
	gw_close(gw, 10000);
}

static void
usage(void)
{
	fprintf(stderr, "usage: client [--url URL] [--pid PID] [--calls N] "
	    "[--layers N]\n              [--seconds S] [--cpu-seconds S] "
	    "[--rate STEPS] [--phases LIST]\n");
	exit(1);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "pid", required_argument, NULL, 'p' },
		{ "calls", required_argument, NULL, 'n' },
		{ "layers", required_argument, NULL, 'l' },
		{ "seconds", required_argument, NULL, 's' },
		{ "cpu-seconds", required_argument, NULL, 'c' },
		{ "rate", required_argument, NULL, 'r' },
		{ "phases", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*url = "http://127.0.0.1:7070";
	const char	*phases = "hotpath,down,e2e,cpu";
	uint64_t	 calls = 10000000;
	double		 seconds = 5, cpu_seconds = 10;
	int		 ch, pid = 0, nlayers = 200, rate = 100;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			url = optarg;
			break;
		case 'p':
			pid = atoi(optarg);
			break;
		case 'n':
			calls = strtoull(optarg, NULL, 10);
			break;
		case 'l':
			nlayers = atoi(optarg);
			break;
		case 's':
			seconds = atof(optarg);
			break;
		case 'c':
			cpu_seconds = atof(optarg);
			break;
		case 'r':
			rate = atoi(optarg);
			break;
		case 'P':
			phases = optarg;
			break;
		default:
			usage();
		}
	}
	if (nlayers < 1 || nlayers > 1024 || rate < 1 || calls < 1)
		usage();
	calibrate();
	if (strstr(phases, "hotpath") != NULL)
		phase_hotpath(url, calls, nlayers);
	if (strstr(phases, "down") != NULL)
		phase_down(calls, nlayers);
	if (strstr(phases, "e2e") != NULL)
		phase_e2e(url, pid, seconds, nlayers);
	if (strstr(phases, "cpu") != NULL)
		phase_cpu(url, cpu_seconds, nlayers, rate);
	return 0;
}
