/* SPDX-License-Identifier: MIT */
/*
 * The spool.  With nothing listening for a whole run, its values and its
 * finish are in <spool_dir>/<run>.gwspool after gw_close (records as
 * spool.c lays them out), and `gradwatch sync FILE` delivers them once
 * the daemon is up: every step once, the run finished, the file gone.  A
 * daemon that comes back mid-run gets the spooled steps from the sender
 * itself, in order (checked on a fake daemon, request by request), and
 * the file goes; meanwhile `gradwatch sync` leaves the busy file alone.
 * The next client of a run drains what an earlier one left.  A torn last
 * record, a corrupt last one and a corrupt one in the middle are skipped
 * with a message and the rest is sent.  spool_max_bytes bounds the file;
 * what did not fit is counted as dropped, and the daemon hears how many.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gradwatch.h"
#include "gwt.h"

#define NLAYERS	2

static char	cli[600];		/* build/gradwatch */
static char	spool[600];		/* the spool directory */

/* A record of a spool file as the test reads it (no CRC check here). */
struct rec {
	long long	 off;
	int		 type;
	unsigned	 values;
	char		 run[130];
	char		*body;		/* NUL-terminated copy */
	size_t		 len;
	int64_t		 first, last;	/* its steps, -1 when none */
	int		 nsteps;
};

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE	*f;
	char	*p = NULL;
	long	 n;

	*len = 0;
	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)n + 1)) != NULL &&
	    fread(p, 1, (size_t)n, f) == (size_t)n)
		*len = (size_t)n;
	else {
		free(p);
		p = NULL;
	}
	fclose(f);
	return p;
}

static int
spit(const char *path, const char *p, size_t len)
{
	FILE	*f;
	int	 rc;

	if ((f = fopen(path, "wb")) == NULL)
		return -1;
	rc = fwrite(p, 1, len, f) == len ? 0 : -1;
	return fclose(f) == 0 ? rc : -1;
}

static void
recs_free(struct rec *v, int n)
{
	int	i;

	for (i = 0; i < n; i++)
		free(v[i].body);
}

/* The records of a spool file, walked by their lengths; -1 if it does not add up. */
static int
spool_records(const char *path, struct rec *v, int max, int *n)
{
	unsigned char	*p;
	size_t		 len, off = 0, k, blen;
	json_t		*j, *st;
	size_t		 i;

	*n = 0;
	if ((p = (unsigned char *)slurp(path, &len)) == NULL)
		return -1;
	while (off + 20 <= len && *n < max) {
		k = p[off + 6];
		blen = get32(p + off + 8);
		if (memcmp(p + off, "GWS1", 4) != 0 || off + 20 + k + blen > len)
			break;
		v[*n].off = (long long)off;
		v[*n].type = p[off + 4];
		v[*n].values = get32(p + off + 12);
		snprintf(v[*n].run, sizeof v[*n].run, "%.*s", (int)k,
		    (char *)p + off + 20);
		v[*n].body = strndup((char *)p + off + 20 + k, blen);
		v[*n].len = blen;
		v[*n].first = v[*n].last = -1;
		v[*n].nsteps = 0;
		j = json_loads(v[*n].body, 0, NULL);
		st = json_object_get(j, "steps");
		for (i = 0; i < json_array_size(st); i++) {
			int64_t s = json_integer_value(json_object_get(
			    json_array_get(st, i), "step"));

			if (v[*n].first == -1)
				v[*n].first = s;
			v[*n].last = s;
			v[*n].nsteps++;
		}
		json_decref(j);
		off += 20 + k + blen;
		(*n)++;
	}
	free(p);
	return off == len ? 0 : -1;
}

static int
exists(const char *path)
{
	struct stat	st;

	return stat(path, &st) == 0;
}

static long long
size_of(const char *path)
{
	struct stat	st;

	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Run `gradwatch sync` with args; its exit status, its output in out. */
static int
run_sync(const char *args, char *out, size_t outlen)
{
	char	 cmd[2000];
	FILE	*p;
	size_t	 n = 0, r;
	int	 st;

	snprintf(cmd, sizeof cmd, "'%s' sync -t 20 %s 2>&1", cli, args);
	out[0] = '\0';
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	while (n + 1 < outlen && (r = fread(out + n, 1, outlen - n - 1, p)) > 0)
		n += r;
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The spool file of a run. */
static void
spool_file(char *out, size_t size, const char *run)
{
	snprintf(out, size, "%s/%s.gwspool", spool, run);
}

static void
open_opts(struct gw_options *opt, const char *url, const char *run)
{
	memset(opt, 0, sizeof *opt);
	opt->url = url;
	opt->run = run;
	opt->spool_dir = spool;
	opt->flush_interval_ms = 20;
}

/* Log steps [from, to): loss and NLAYERS gradient norms each; want gets them. */
static int
log_steps(struct gw_client *gw, const int *layer, int64_t from, int64_t to,
    int pace, struct gwt_point **want, size_t *nwant)
{
	char	name[16];
	int64_t	step;
	int	k, bad = 0;

	for (step = from; step < to; step++) {
		bad |= gw_loss(gw, step, 1.0 / (double)(step + 1)) != GW_OK;
		if (want != NULL)
			gwt_point_add(want, nwant, "loss", "loss", step,
			    1.0 / (double)(step + 1));
		for (k = 0; k < NLAYERS; k++) {
			bad |= gw_layer_grad(gw, step, layer[k],
			    (double)step + k * 0.25) != GW_OK;
			snprintf(name, sizeof name, "l%d", k);
			if (want != NULL)
				gwt_point_add(want, nwant, "layer_grad", name,
				    step, (double)step + k * 0.25);
		}
		if (pace > 0 && step % pace == pace - 1)
			gwt_sleep_ms(1);
	}
	return bad;
}

static void
layers(struct gw_client *gw, int *layer)
{
	char	name[16];
	int	k;

	for (k = 0; k < NLAYERS; k++) {
		snprintf(name, sizeof name, "l%d", k);
		layer[k] = gw_layer(gw, name, 100, k);
	}
}

/* Compare the daemon's points of run (time left out) with want. */
static int
check_points(const char *url, const char *run, struct gwt_point *want,
    size_t nwant, const char *what)
{
	struct gwt_point	*got = NULL;
	size_t			 ngot = 0, i;
	char			 why[512];
	int			 ordered, rc;

	gwt_export(url, run, &got, &ngot, &ordered);
	for (i = 0; i < ngot; )
		if (strcmp(got[i].kind, "time") == 0)
			got[i] = got[--ngot];
		else
			i++;
	rc = gwt_points_equal(got, ngot, want, nwant, why, sizeof why);
	if (!ok(rc == 0, "%s", what))
		diag("%s", why);
	free(got);
	return rc == 0;
}

static const char *
run_status(const char *url, const char *run, long long *dropped)
{
	static char	 status[32];
	char		 path[300];
	json_t		*j;

	snprintf(path, sizeof path, "/api/v1/runs/%s", run);
	j = gwt_get_json(url, path);
	snprintf(status, sizeof status, "%s",
	    json_string_value(json_object_get(j, "status")) != NULL ?
	    json_string_value(json_object_get(j, "status")) : "(none)");
	if (dropped != NULL)
		*dropped = json_integer_value(json_object_get(j, "dropped"));
	json_decref(j);
	return status;
}

/* A run logged with nothing listening, closed: its spool file's path in file. */
static int
spool_a_run(const char *run, int64_t nsteps, size_t max, char *file,
    size_t filelen, struct gwt_point **want, size_t *nwant)
{
	struct gw_options	 opt;
	struct gw_client	*gw = NULL;
	char			 dead[64];
	int			 layer[NLAYERS], rc;

	snprintf(dead, sizeof dead, "http://127.0.0.1:%d", gwt_free_port());
	open_opts(&opt, dead, run);
	opt.spool_max_bytes = max;
	spool_file(file, filelen, run);
	if (gw_open(&gw, &opt) != GW_OK)
		return GW_EINVAL;
	layers(gw, layer);
	log_steps(gw, layer, 0, nsteps, 0, want, nwant);
	gwt_sleep_ms(50);		/* the sender has failed once */
	rc = gw_close(gw, 400);
	return rc;
}

static void
test_down_then_sync(struct gwt_daemon *d)
{
	struct gwt_point	*want = NULL;
	struct rec		 v[64];
	size_t			 nwant = 0;
	char			 file[700], out[4096], args[1500];
	unsigned		 values = 0;
	int			 n, i, rc, good = 1;
	double			 t0;

	t0 = gwt_now();
	rc = spool_a_run("spool-a", 500, 0, file, sizeof file, &want, &nwant);
	is_int(rc, GW_ESPOOLED, "nothing listens: gw_close says the rest is "
	    "spooled");
	ok(gwt_now() - t0 < 1.5, "and returns in time (%.2f s)",
	    gwt_now() - t0);
	ok(size_of(file) > 0, "%s is there (%lld bytes)", file, size_of(file));
	rc = spool_records(file, v, 64, &n);
	for (i = 0; i < n; i++) {
		good &= strcmp(v[i].run, "spool-a") == 0;
		if (v[i].type == 'i')
			values += v[i].values;
	}
	ok(rc == 0 && n >= 2 && good, "its %d records follow each other "
	    "to the end of the file, each naming the run", n);
	ok(n >= 2 && v[0].type == 'i' && strstr(v[0].body, "\"meta\"") !=
	    NULL, "the first carries the meta");
	ok(n >= 2 && v[n - 1].type == 'f' && strcmp(v[n - 1].body,
	    "{\"status\":\"finished\"}") == 0, "the last is the finish");
	is_int(values, 500 * (1 + NLAYERS), "the records count every value");
	recs_free(v, n);

	if (!ok(gwt_daemon_start(d, NULL) == 0, "the daemon comes up"))
		return;
	snprintf(args, sizeof args, "--url %s '%s'", d->url, file);
	rc = run_sync(args, out, sizeof out);
	if (!is_int(rc, 0, "gradwatch sync FILE exits 0"))
		diag("%s", out);
	ok(strstr(out, "sent") != NULL && strstr(out, "1500 values") != NULL,
	    "and says what it sent");
	ok(!exists(file), "the file is removed");
	check_points(d->url, "spool-a", want, nwant, "every step arrived, "
	    "once, with its values");
	is_int(strcmp(run_status(d->url, "spool-a", NULL), "finished"), 0,
	    "the run is finished");
	snprintf(args, sizeof args, "--url %s '%s'", d->url, spool);
	rc = run_sync(args, out, sizeof out);
	ok(rc == 0 && strstr(out, "no spool files") != NULL, "a directory "
	    "without spool files is fine (%d)", rc);
	free(want);
}

/* The next client of a run sends what an earlier one left, first. */
static void
test_leftover(struct gwt_daemon *d)
{
	struct gw_options	 opt;
	struct gw_client	*gw = NULL;
	struct gwt_point	*want = NULL;
	size_t			 nwant = 0;
	char			 file[700];
	int			 layer[NLAYERS], rc;

	rc = spool_a_run("spool-f", 200, 0, file, sizeof file, &want, &nwant);
	ok(rc == GW_ESPOOLED && exists(file), "a run left a spool file");
	open_opts(&opt, d->url, "spool-f");
	if (!ok(gw_open(&gw, &opt) == GW_OK, "a client of the same run "
	    "opens"))
		return;
	layers(gw, layer);
	log_steps(gw, layer, 200, 300, 0, &want, &nwant);
	is_int(gw_close(gw, 5000), GW_OK, "closes: it sent everything");
	ok(!exists(file), "the file left earlier is drained and removed");
	check_points(d->url, "spool-f", want, nwant, "the daemon has the "
	    "steps of both");
	free(want);
}

/* The daemon is away (nothing listens on later's port), then comes up. */
static void
test_back_mid_run(void)
{
	struct gwt_daemon	 d = { 0 };
	struct gw_options	 opt;
	struct gw_client	*gw = NULL;
	struct gwt_point	*want = NULL;
	size_t			 nwant = 0;
	char			 url[64], file[700], out[4096], args[1500];
	int			 layer[NLAYERS], rc, bad;
	double			 t0;

	d.port = gwt_free_port();
	d.ws_port = gwt_free_port();
	snprintf(d.db, sizeof d.db, "%s/back.db", gwt_tmpdir());
	snprintf(d.log, sizeof d.log, "%s/back.log", gwt_tmpdir());
	snprintf(url, sizeof url, "http://127.0.0.1:%d", d.port);
	snprintf(d.url, sizeof d.url, "%s", url);
	open_opts(&opt, url, "spool-b");
	opt.buffer_points = 4096;
	spool_file(file, sizeof file, "spool-b");
	if (!ok(gw_open(&gw, &opt) == GW_OK, "open before the daemon is up"))
		return;
	layers(gw, layer);
	bad = log_steps(gw, layer, 0, 2000, 5, &want, &nwant);
	t0 = gwt_now();
	while (!exists(file) && gwt_now() < t0 + 5)
		gwt_sleep_ms(10);
	ok(!bad && exists(file), "past half a buffer with the daemon away, "
	    "values go to %s", file);
	snprintf(args, sizeof args, "--url %s '%s'", url, file);
	rc = run_sync(args, out, sizeof out);
	ok(rc == 1 && strstr(out, "in use") != NULL, "gradwatch sync leaves "
	    "the file of a running program alone (exit %d)", rc);
	if (!ok(gwt_daemon_start(&d, NULL) == 0, "the daemon comes up"))
		return;
	bad = log_steps(gw, layer, 2000, 3000, 10, &want, &nwant);
	ok(!bad, "logging went on as usual");
	t0 = gwt_now();
	rc = gw_flush(gw, 15000);
	is_int(rc, GW_OK, "gw_flush: the sender drained the spool itself");
	diag("flushed in %.2f s", gwt_now() - t0);
	ok(!exists(file), "and removed it");
	is_int((long long)gw_dropped(gw), 0, "nothing dropped");
	is_int(gw_close(gw, 3000), GW_OK, "gw_close");
	check_points(d.url, "spool-b", want, nwant, "every step arrived, once");
	is_int(strcmp(run_status(d.url, "spool-b", NULL), "finished"), 0,
	    "the run is finished");
	free(want);
	gwt_daemon_stop(&d, SIGTERM);
}

/* A fake daemon that answers 503 until told it is up. */
static volatile int	fake_up;

static long
down_cb(struct gwt_fake *f, int i, const struct gwt_req *r, char *headers,
    size_t hlen, char *body, size_t blen)
{
	(void)f;
	(void)i;
	(void)r;
	(void)headers;
	(void)hlen;
	if (!__atomic_load_n(&fake_up, __ATOMIC_SEQ_CST)) {
		snprintf(body, blen, "{\"error\":\"overloaded\",\"message\":"
		    "\"not now\"}");
		return 503;
	}
	snprintf(body, blen, "{\"accepted\":1,\"health\":\"ok\",\"alerts\":[]}");
	return 200;
}

static void
test_order(void)
{
	struct gwt_fake		 f;
	struct gw_options	 opt;
	struct gw_client	*gw = NULL;
	char			 file[700];
	json_t			*j, *steps;
	int64_t			 last = -1, s, seen = 0;
	size_t			 k;
	int			 layer[NLAYERS], i, n, okorder = 1, finish = 0;
	double			 t0;

	if (!ok(gwt_fake_start(&f, down_cb, NULL) == 0, "a daemon that "
	    "answers 503"))
		return;
	open_opts(&opt, f.url, "spool-order");
	opt.buffer_points = 4096;
	spool_file(file, sizeof file, "spool-order");
	gw_open(&gw, &opt);
	layers(gw, layer);
	log_steps(gw, layer, 0, 2000, 5, NULL, NULL);
	t0 = gwt_now();
	while (!exists(file) && gwt_now() < t0 + 5)
		gwt_sleep_ms(10);
	ok(exists(file), "503s count as away: the values are spooled");
	__atomic_store_n(&fake_up, 1, __ATOMIC_SEQ_CST);
	log_steps(gw, layer, 2000, 3000, 10, NULL, NULL);
	is_int(gw_close(gw, 15000), GW_OK, "once it takes them, gw_close "
	    "sends everything");
	ok(!exists(file), "the spool file is gone");
	pthread_mutex_lock(&f.lock);
	n = f.nreqs;
	for (i = 0; i < n; i++) {
		if (f.reqs[i].status != 200)
			continue;
		if (strstr(f.reqs[i].path, "/finish") != NULL) {
			finish++;
			continue;
		}
		j = json_loadb(f.reqs[i].body, f.reqs[i].len, 0, NULL);
		steps = json_object_get(j, "steps");
		for (k = 0; k < json_array_size(steps); k++) {
			s = json_integer_value(json_object_get(json_array_get(
			    steps, k), "step"));
			if (s < last)
				okorder = 0;
			if (s != last)
				seen++;
			last = s;
		}
		json_decref(j);
	}
	pthread_mutex_unlock(&f.lock);
	ok(okorder, "the daemon got the steps in order, request after "
	    "request");
	ok(seen == 3000 && last == 2999, "all 3000 of them (%lld, the last "
	    "%lld)", (long long)seen, (long long)last);
	is_int(finish, 1, "then the finish");
	gwt_fake_stop(&f);
}

/* Damage a copy of a spool file's records; sync; check what arrived. */
static void
test_damage(struct gwt_daemon *d)
{
	struct gwt_point	*want = NULL, *keep;
	struct rec		 v[64];
	size_t			 nwant = 0, len, i, nkeep;
	char			 file[700], out[4096], args[1500], *p;
	int			 n = 0, rc, mid = -1;

	/* A crash while appending a record: its first bytes are there. */
	rc = spool_a_run("spool-torn", 300, 0, file, sizeof file, &want,
	    &nwant);
	p = slurp(file, &len);
	ok(rc == GW_ESPOOLED && p != NULL && len > 40, "a spool file to tear");
	if (p != NULL && len > 40) {
		char	*q = malloc(len + 37);

		memcpy(q, p, len);
		memcpy(q + len, p, 37);		/* a torn copy of the first */
		spit(file, q, len + 37);
		free(q);
	}
	free(p);
	snprintf(args, sizeof args, "--url %s '%s'", d->url, file);
	rc = run_sync(args, out, sizeof out);
	if (!ok(rc == 0 && strstr(out, "torn") != NULL, "a torn last record "
	    "is ignored with a message (exit %d)", rc))
		diag("%s", out);
	ok(!exists(file), "the file is removed");
	check_points(d->url, "spool-torn", want, nwant, "every step before "
	    "it arrived");
	is_int(strcmp(run_status(d->url, "spool-torn", NULL), "finished"), 0,
	    "and the finish");
	free(want);

	/* A corrupt last record (the finish): the steps arrive, not the finish. */
	want = NULL;
	nwant = 0;
	rc = spool_a_run("spool-bad-end", 300, 0, file, sizeof file, &want,
	    &nwant);
	p = slurp(file, &len);
	if (p != NULL && len > 10) {
		p[len - 3] ^= 0x55;
		spit(file, p, len);
	}
	free(p);
	snprintf(args, sizeof args, "--url %s '%s'", d->url, file);
	rc = run_sync(args, out, sizeof out);
	if (!ok(rc == 0 && strstr(out, "corrupt last record") != NULL, "a "
	    "corrupt last record is ignored with a message (exit %d)", rc))
		diag("%s", out);
	check_points(d->url, "spool-bad-end", want, nwant, "every step "
	    "before it arrived");
	is_int(strcmp(run_status(d->url, "spool-bad-end", NULL), "running"),
	    0, "the finish was that record: the run is still running");
	free(want);

	/* A corrupt record in the middle: skipped, the ones after it sent. */
	want = NULL;
	nwant = 0;
	rc = spool_a_run("spool-bad-mid", 300, 0, file, sizeof file, &want,
	    &nwant);
	snprintf(args, sizeof args, "--url %s '%s'", d->url, file);
	spool_records(file, v, 64, &n);
	for (i = 1; (int)i + 2 < n && mid == -1; i++)
		if (v[i].type == 'i' && v[i].nsteps > 0)
			mid = (int)i;
	p = slurp(file, &len);
	ok(mid > 0 && p != NULL, "a spool file with %d records: damage "
	    "record %d (steps %lld to %lld)", n, mid,
	    mid > 0 ? (long long)v[mid].first : -1LL,
	    mid > 0 ? (long long)v[mid].last : -1LL);
	if (mid > 0 && p != NULL) {
		p[v[mid].off + 20 + strlen(v[mid].run) + v[mid].len / 2] ^= 0x55;
		spit(file, p, len);
		keep = want;
		for (i = nkeep = 0; i < nwant; i++)
			if (want[i].step < v[mid].first ||
			    want[i].step > v[mid].last)
				keep[nkeep++] = want[i];
		nwant = nkeep;
	}
	free(p);
	rc = run_sync(args, out, sizeof out);
	if (!ok(rc == 0 && strstr(out, "damaged") != NULL, "a corrupt record "
	    "in the middle is skipped with a message (exit %d)", rc))
		diag("%s", out);
	check_points(d->url, "spool-bad-mid", want, nwant, "the records "
	    "around it arrived");
	is_int(strcmp(run_status(d->url, "spool-bad-mid", NULL), "finished"),
	    0, "and the finish after it");
	ok(!exists(file), "the file is removed");
	recs_free(v, n);
	free(want);
}

static void
test_limit(struct gwt_daemon *d)
{
	struct rec		 v[64];
	char			 file[700], out[4096], args[1500], *p;
	long long		 size, dropped = -1, got_dropped;
	unsigned		 values = 0;
	int			 n = 0, i, rc, steps = 0, prefix = 1;
	json_t			*j;

	rc = spool_a_run("spool-d", 1000, 30000, file, sizeof file, NULL, NULL);
	is_int(rc, GW_ESPOOLED, "a run with spool_max_bytes 30000: spooled");
	size = size_of(file);
	spool_records(file, v, 64, &n);
	for (i = 0; i < n; i++) {
		if (v[i].type == 'i' && v[i].nsteps == 0 &&
		    (p = strstr(v[i].body, "\"dropped\":")) != NULL)
			dropped = atoll(p + 10);
		else if (v[i].type == 'i') {
			values += v[i].values;
			prefix &= v[i].first == steps;
			steps += v[i].nsteps;
		}
	}
	ok(size > 0 && size - (n >= 2 ? (long long)(v[n - 2].len +
	    v[n - 1].len + 2 * (20 + 7)) : 0) <= 30000, "the file keeps to the "
	    "limit (%lld bytes, the last two records aside)", size);
	ok(n >= 3 && v[n - 1].type == 'f' && dropped > 0, "it ends with the "
	    "count of what was dropped (%lld) and the finish", dropped);
	is_int(dropped + values, 1000 * (1 + NLAYERS), "spooled and dropped "
	    "make up everything logged");
	ok(prefix && steps > 0, "the spooled steps are the first %d", steps);
	recs_free(v, n);
	snprintf(args, sizeof args, "--url %s", d->url);
	setenv("GRADWATCH_SPOOL", spool, 1);
	rc = run_sync(args, out, sizeof out);
	unsetenv("GRADWATCH_SPOOL");
	if (!is_int(rc, 0, "gradwatch sync, the directory from "
	    "$GRADWATCH_SPOOL"))
		diag("%s", out);
	j = gwt_get_json(d->url, "/api/v1/runs/spool-d");
	got_dropped = json_integer_value(json_object_get(j, "dropped"));
	is_int(got_dropped, dropped, "the daemon counts the dropped values");
	ok(json_is_integer(json_object_get(j, "points")) &&
	    json_integer_value(json_object_get(j, "points")) >= values,
	    "and has the spooled ones");
	json_decref(j);
}

int
main(void)
{
	struct gwt_daemon	 d = { 0 };
	const char		*t = getenv("GW_TOP"), *b = getenv("GW_BUILD");

	if (b == NULL)
		b = "build";
	if (b[0] == '/' || t == NULL)
		snprintf(cli, sizeof cli, "%s/gradwatch", b);
	else
		snprintf(cli, sizeof cli, "%s/%s/gradwatch", t, b);
	snprintf(spool, sizeof spool, "%s/spool", gwt_tmpdir());
	if (access(cli, X_OK) != 0) {
		printf("Bail out! %s is missing: run make\n", cli);
		return 1;
	}
	test_down_then_sync(&d);
	if (d.pid > 0) {
		test_leftover(&d);
		test_damage(&d);
		test_limit(&d);
	}
	test_back_mid_run();
	test_order();
	gwt_daemon_stop(&d, SIGTERM);
	return done_testing();
}
