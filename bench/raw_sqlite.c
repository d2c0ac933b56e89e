/* SPDX-License-Identifier: MIT */
/*
 * bench/raw_sqlite: the baseline the daemon is measured against.  A
 * plain C loop stores one row (series_id, step, value) per point in
 * 10,000-row transactions into a fresh file in --dir (put it beside
 * the daemon's database, so both write to the same disk), with WAL and
 * the chosen synchronous level, for --seconds per variant.  "append"
 * is a rowid table with no index; "keyed" has the (series_id, step)
 * primary key (WITHOUT ROWID).  Points come step by step, each step
 * carrying one value for each of --series series, as a training loop
 * produces them.  One thread; prints one RESULT line per variant.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

static struct {
	const char	*dir;
	double		 seconds;
	int		 series;
	int		 txn;
	const char	*mode;	/* append, keyed or all */
	const char	*sync;	/* full, normal or all */
	int		 keep;
} opt;

static void
die(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	fputs("raw_sqlite: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double
now_mono(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
exec_sql(sqlite3 *db, const char *sql)
{
	char	*err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		die("%s: %s", sql, err ? err : "?");
}

static void
remove_db(const char *path)
{
	char	buf[4200];

	unlink(path);
	snprintf(buf, sizeof buf, "%s-wal", path);
	unlink(buf);
	snprintf(buf, sizeof buf, "%s-shm", path);
	unlink(buf);
}

/*
 * Insert rows for opt.seconds (whole transactions only) into a new
 * table of the given mode and synchronous level; print the rate.
 */
static void
run_variant(const char *mode, const char *sync)
{
	sqlite3		*db = NULL;
	sqlite3_stmt	*ins = NULL;
	double		*scale, t0, t1;
	char		 path[4096], sql[256];
	int64_t		 step = 0, rows = 0;
	int		 s = 0, i, keyed = strcmp(mode, "keyed") == 0;

	snprintf(path, sizeof path, "%s/raw-%s-%s.db", opt.dir, mode, sync);
	remove_db(path);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("%s: %s", path, sqlite3_errmsg(db));
	exec_sql(db, "PRAGMA journal_mode=WAL");
	snprintf(sql, sizeof sql, "PRAGMA synchronous=%s", sync);
	exec_sql(db, sql);
	exec_sql(db, keyed ?
	    "CREATE TABLE points (series_id INTEGER NOT NULL, "
	    "step INTEGER NOT NULL, value REAL, "
	    "PRIMARY KEY (series_id, step)) WITHOUT ROWID" :
	    "CREATE TABLE points (series_id INTEGER NOT NULL, "
	    "step INTEGER NOT NULL, value REAL)");
	if (sqlite3_prepare_v2(db, "INSERT INTO points (series_id, step, "
	    "value) VALUES (?1, ?2, ?3)", -1, &ins, NULL) != SQLITE_OK)
		die("prepare: %s", sqlite3_errmsg(db));

	/* Per-series scales, as a model's layers differ by decades. */
	if ((scale = malloc(sizeof *scale * (size_t)opt.series)) == NULL)
		die("out of memory");
	for (i = 0; i < opt.series; i++)
		scale[i] = exp(-3.0 + 6.0 * (i % 17) / 17.0);

	t0 = now_mono();
	do {
		exec_sql(db, "BEGIN");
		for (i = 0; i < opt.txn; i++) {
			sqlite3_bind_int64(ins, 1, s + 1);
			sqlite3_bind_int64(ins, 2, step);
			sqlite3_bind_double(ins, 3, scale[s] *
			    (1.0 + 0.1 * sin((double)(step + s))));
			if (sqlite3_step(ins) != SQLITE_DONE)
				die("insert: %s", sqlite3_errmsg(db));
			sqlite3_reset(ins);
			if (++s == opt.series) {
				s = 0;
				step++;
			}
		}
		exec_sql(db, "COMMIT");
		rows += opt.txn;
		t1 = now_mono();
	} while (t1 - t0 < opt.seconds);

	printf("RESULT bench=raw_sqlite mode=%s sync=%s rows=%" PRId64
	    " seconds=%.3f rows_per_s=%.0f txn_rows=%d series=%d\n",
	    mode, sync, rows, t1 - t0, rows / (t1 - t0), opt.txn, opt.series);
	fflush(stdout);
	free(scale);
	sqlite3_finalize(ins);
	sqlite3_close(db);
	if (!opt.keep)
		remove_db(path);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: raw_sqlite [-k] [--dir DIR] [--seconds S] [--series N]\n"
	    "                  [--txn ROWS] [--mode append|keyed|all]\n"
	    "                  [--sync full|normal|all]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "seconds", required_argument, NULL, 't' },
		{ "series", required_argument, NULL, 's' },
		{ "txn", required_argument, NULL, 'n' },
		{ "mode", required_argument, NULL, 'm' },
		{ "sync", required_argument, NULL, 'y' },
		{ "keep", no_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 }
	};
	static const char *const modes[] = { "append", "keyed" };
	static const char *const syncs[] = { "full", "normal" };
	char	*end;
	int	 ch, m, y;

	opt.dir = ".";
	opt.seconds = 3;
	opt.series = 204;	/* 200 layers + loss, grad_norm, lr, time */
	opt.txn = 10000;
	opt.mode = "all";
	opt.sync = "full";
	while ((ch = getopt_long(argc, argv, "k", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			opt.dir = optarg;
			break;
		case 'k':
			opt.keep = 1;
			break;
		case 'm':
			opt.mode = optarg;
			break;
		case 'n':
			opt.txn = atoi(optarg);
			if (opt.txn < 1)
				die("--txn: %s: expected a positive count",
				    optarg);
			break;
		case 's':
			opt.series = atoi(optarg);
			if (opt.series < 1)
				die("--series: %s: expected a positive count",
				    optarg);
			break;
		case 't':
			errno = 0;
			opt.seconds = strtod(optarg, &end);
			if (errno != 0 || *end != '\0' || !(opt.seconds > 0))
				die("--seconds: %s: expected a positive number",
				    optarg);
			break;
		case 'y':
			opt.sync = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (strcmp(opt.mode, "all") != 0 && strcmp(opt.mode, "append") != 0 &&
	    strcmp(opt.mode, "keyed") != 0)
		die("--mode: %s: expected append, keyed or all", opt.mode);
	if (strcmp(opt.sync, "all") != 0 && strcmp(opt.sync, "full") != 0 &&
	    strcmp(opt.sync, "normal") != 0)
		die("--sync: %s: expected full, normal or all", opt.sync);
	for (y = 0; y < 2; y++) {
		if (strcmp(opt.sync, "all") != 0 &&
		    strcmp(opt.sync, syncs[y]) != 0)
			continue;
		for (m = 0; m < 2; m++)
			if (strcmp(opt.mode, "all") == 0 ||
			    strcmp(opt.mode, modes[m]) == 0)
				run_variant(modes[m], syncs[y]);
	}
	return 0;
}
