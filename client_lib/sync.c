/* SPDX-License-Identifier: MIT */
/*
 * sync: gw_sync, which sends the spool files a program left behind (the
 * daemon was away until it ended) to the daemon, for `gradwatch sync`
 * and for scripts.  A file's records go in order, each until it is taken;
 * a file is locked while it is read, so the file of a program that is
 * still running is skipped rather than sent twice.  Runs on the caller's
 * thread, which it blocks for at most its timeout.
 */
#define _GNU_SOURCE		/* asprintf */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "internal.h"

struct gw__sync {
	struct gw__transport	*tr;
	char			*url;
	_Atomic int64_t		 deadline;	/* ms, monotonic */
	struct gw_sync_stats	*st;
	void			(*say_cb)(void *, const char *);
	void			*arg;
	uint64_t		 rng;
	int			 rc;		/* the first problem */
};

/* A spool file of a directory, to sort them oldest first. */
struct gw__sync_file {
	char		*path;
	struct timespec	 mtime;
};

static void
gw__sync_say(struct gw__sync *y, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
gw__sync_say(struct gw__sync *y, const char *fmt, ...)
{
	char	line[1024];
	va_list	ap;

	if (y->say_cb == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	y->say_cb(y->arg, line);
}

static void
gw__sync_fail(struct gw__sync *y, int code)
{
	if (y->rc == GW_OK)
		y->rc = code;
}

static uint64_t
gw__sync_rand(struct gw__sync *y)
{
	y->rng ^= y->rng >> 12;		/* xorshift64* */
	y->rng ^= y->rng << 25;
	y->rng ^= y->rng >> 27;
	return y->rng * 0x2545f4914f6cdd1dULL;
}

static void
gw__sync_sleep(int64_t ms)
{
	struct timespec	ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Post rec until it is taken or refused; 0, or -1 when time ran out. */
static int
gw__sync_post(struct gw__sync *y, const char *file,
    const struct gw__spool_rec *rec)
{
	struct gw__reply	 r;
	char			*url, text[160], what[GW__ERRMSG_SIZE];
	int64_t			 delay;
	int			 attempts = 0, rc = -1;

	if ((url = gw__spool_url(y->url, rec)) == NULL) {
		gw__sync_say(y, "%s: out of memory", file);
		gw__sync_fail(y, GW_ENOMEM);
		return -1;
	}
	for (;;) {
		gw__transport_post(y->tr, url, rec->body, rec->len,
		    &y->deadline, NULL, NULL, &r);
		if (r.status >= 200 && r.status < 300) {
			y->st->records++;
			y->st->values += rec->values;
			rc = 0;
			break;
		}
		if (r.status != 0) {
			gw__reply_text(&r, text, sizeof text);
			snprintf(what, sizeof what, "answered %ld (%s)",
			    r.status, text);
		} else
			snprintf(what, sizeof what, "%s", r.aborted ?
			    "no answer in time" : r.error);
		if (!r.aborted && gw__reply_is_refusal(r.status)) {
			gw__sync_say(y, "%s: the daemon refused the record at "
			    "byte %lld: %s: dropped", file,
			    (long long)rec->off, what);
			y->st->refused++;
			gw__sync_fail(y, GW_EREFUSED);
			rc = 0;
			break;
		}
		delay = gw__backoff_ms(++attempts, r.retry_after_ms,
		    gw__sync_rand(y));
		if (r.aborted || gw__now_ms() + delay >= atomic_load(
		    &y->deadline)) {
			gw__sync_say(y, "%s: %s: %s: out of time", file, url,
			    what);
			gw__sync_fail(y, r.status == 0 ? GW_ECONN :
			    GW_ETIMEDOUT);
			break;
		}
		if (attempts == 1)
			gw__sync_say(y, "%s: %s: %s: retrying", file, url,
			    what);
		gw__sync_sleep(delay);
	}
	free(url);
	return rc;
}

/* Send one spool file; 0, or -1 when time ran out (stop there). */
static int
gw__sync_file(struct gw__sync *y, const char *path)
{
	struct gw__spool	*sp = NULL;
	struct gw__spool_rec	 rec;
	char			 why[GW__ERRMSG_SIZE];
	uint64_t		 records = y->st->records, values = y->st->values;
	int64_t			 skipped;
	int			 rc, torn, stop = 0, broken = 0;

	rc = gw__spool_open(path, 0, SIZE_MAX, &sp, why, sizeof why);
	if (rc == GW_EBUSY) {
		gw__sync_say(y, "%s: in use by a running program: skipped",
		    path);
		gw__sync_fail(y, rc);
		return 0;
	}
	if (rc != GW_OK) {
		gw__sync_say(y, "%s", why);
		gw__sync_fail(y, rc);
		return 0;
	}
	if (sp == NULL)
		return 0;	/* its program drained and removed it meanwhile */
	y->st->files++;
	for (;;) {
		rc = gw__spool_next(sp, &rec, &skipped, &torn, why, sizeof why);
		if (skipped > 0) {
			y->st->damaged_bytes += (uint64_t)skipped;
			if (torn)
				gw__sync_say(y, "%s: ignored a torn or corrupt "
				    "last record (%lld bytes at byte %lld)",
				    path, (long long)skipped,
				    (long long)(gw__spool_size(sp) - skipped));
			else
				gw__sync_say(y, "%s: skipped %lld damaged "
				    "bytes before byte %lld", path,
				    (long long)skipped, (long long)rec.off);
		}
		if (rc == -1) {
			gw__sync_say(y, "%s", why);
			gw__sync_fail(y, GW_EINVAL);
			broken = 1;
			break;
		}
		if (rc == 0)
			break;
		if (gw__sync_post(y, path, &rec) == -1) {
			stop = 1;
			break;
		}
		gw__spool_done(sp, &rec);
	}
	records = y->st->records - records;
	values = y->st->values - values;
	if (!stop && !broken && !gw__spool_has_pending(sp)) {
		y->st->files_done++;
		gw__sync_say(y, "%s: sent %llu records (%llu values) to %s; "
		    "removed", path, (unsigned long long)records,
		    (unsigned long long)values, y->url);
	} else
		gw__sync_say(y, "%s: sent %llu records (%llu values) to %s; "
		    "the rest is kept", path, (unsigned long long)records,
		    (unsigned long long)values, y->url);
	gw__spool_close(sp, stop || broken);
	return stop ? -1 : 0;
}

static int
gw__sync_file_cmp(const void *a, const void *b)
{
	const struct gw__sync_file	*x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
	return strcmp(x->path, y->path);
}

/* Send every *.gwspool file of dir, oldest first. */
static void
gw__sync_dir(struct gw__sync *y, const char *dir)
{
	struct gw__sync_file	*v = NULL, *p;
	struct dirent		*de;
	struct stat		 st;
	DIR			*d;
	size_t			 n = 0, cap = 0, i, len, slen;

	slen = strlen(GW__SPOOL_SUFFIX);
	if ((d = opendir(dir)) == NULL) {
		gw__sync_say(y, "%s: %s", dir, strerror(errno));
		gw__sync_fail(y, GW_EINVAL);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len <= slen || strcmp(de->d_name + len - slen,
		    GW__SPOOL_SUFFIX) != 0)
			continue;
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			if ((p = realloc(v, cap * sizeof *v)) == NULL)
				goto nomem;
			v = p;
		}
		if (asprintf(&v[n].path, "%s/%s", dir, de->d_name) == -1)
			goto nomem;
		if (lstat(v[n].path, &st) == -1 || !S_ISREG(st.st_mode)) {
			free(v[n].path);
			continue;
		}
		v[n++].mtime = st.st_mtim;
	}
	closedir(d);
	d = NULL;
	if (n == 0)
		gw__sync_say(y, "%s: no spool files", dir);
	if (n > 1)
		qsort(v, n, sizeof *v, gw__sync_file_cmp);
	for (i = 0; i < n; i++)
		if (gw__sync_file(y, v[i].path) == -1)
			break;
	goto out;

nomem:
	gw__sync_say(y, "%s: out of memory", dir);
	gw__sync_fail(y, GW_ENOMEM);
out:
	if (d != NULL)
		closedir(d);
	for (i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

int
gw_sync(const char *path, const struct gw_options *opt, int timeout_ms,
    struct gw_sync_stats *stats, void (*say_cb)(void *, const char *),
    void *arg)
{
	struct gw_sync_stats	 none = { 0 };
	struct gw__sync		 y;
	struct stat		 st;
	char			*auth = NULL, why[GW__ERRMSG_SIZE];
	size_t			 len;
	char			*dir = NULL;
	int			 rc;

	memset(&y, 0, sizeof y);
	y.st = stats != NULL ? stats : &none;
	memset(y.st, 0, sizeof *y.st);
	y.say_cb = say_cb;
	y.arg = arg;
	if (path == NULL || path[0] == '\0' || timeout_ms <= 0) {
		gw__sync_say(&y, "%s", path == NULL || path[0] == '\0' ?
		    "no path given" : "the timeout must be positive");
		return GW_EINVAL;
	}
	if ((rc = gw__options_endpoint(opt, &y.url, &auth, why,
	    sizeof why)) != GW_OK) {
		gw__sync_say(&y, "%s", why);
		return rc;
	}
	atomic_init(&y.deadline, gw__now_ms() + timeout_ms);
	if (getrandom(&y.rng, sizeof y.rng, GRND_NONBLOCK) != sizeof y.rng)
		y.rng = (uint64_t)gw__now_ms();
	y.rng |= 1;
	if ((y.tr = gw__transport_new(auth)) == NULL) {
		gw__sync_say(&y, "libcurl could not be initialised");
		rc = GW_ENOMEM;
		goto out;
	}
	if (stat(path, &st) == -1) {
		gw__sync_say(&y, "%s: %s", path, strerror(errno));
		rc = GW_EINVAL;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		if ((dir = strdup(path)) == NULL) {
			rc = GW_ENOMEM;
			goto out;
		}
		len = strlen(dir);
		while (len > 1 && dir[len - 1] == '/')
			dir[--len] = '\0';
		gw__sync_dir(&y, dir);
	} else
		gw__sync_file(&y, path);
	rc = y.rc;

out:
	gw__transport_free(y.tr);
	free(y.url);
	if (auth != NULL)
		explicit_bzero(auth, strlen(auth));
	free(auth);
	free(dir);
	return rc;
}
