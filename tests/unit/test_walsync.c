/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for walsync: every submitted job is answered, in order,
 * with its status kept when the WAL syncs; when the sync fails (here
 * the "WAL" is a FIFO, which fdatasync refuses) a 200 becomes a 503 and
 * other answers stay; a missing WAL at start is opened at the first
 * sync; a WAL whose name is removed is still synced (SQLite writes on);
 * stopping answers what is still waiting.
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "walsync.h"
#include "writer.h"

#define NJOBS	64

struct answers {
	int	order[NJOBS];
	size_t	n;
};

static void
done_cb(struct writer_job *job, void *arg)
{
	struct answers	*a = arg;

	a->order[a->n++] = (int)job->received_at;
}

static char *
scratch_db(void)
{
	char	*dir, *path;

	dir = strdup("/tmp/gw-walsync.XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_non_null(path = malloc(strlen(dir) + 8));
	snprintf(path, strlen(dir) + 8, "%s/t.db", dir);
	free(dir);
	return path;
}

static void
remove_db(char *db)
{
	char	wal[4096];

	snprintf(wal, sizeof wal, "%s-wal", db);
	unlink(wal);
	*strrchr(db, '/') = '\0';
	rmdir(db);
	free(db);
}

/* Submit NJOBS jobs in a few lists, statuses 200 and 400 mixed. */
static void
run_jobs(struct walsync *ws, struct writer_job *jobs, struct answers *a)
{
	struct writer_job	*list[NJOBS];
	size_t			 i;

	memset(a, 0, sizeof *a);
	for (i = 0; i < NJOBS; i++) {
		memset(&jobs[i], 0, sizeof jobs[i]);
		jobs[i].status = i % 5 == 0 ? 400 : 200;
		jobs[i].body = strdup("{}");
		jobs[i].received_at = (double)i;
		jobs[i].done = done_cb;
		jobs[i].done_arg = a;
		list[i] = &jobs[i];
	}
	for (i = 0; i < NJOBS; i += 16)
		walsync_submit(ws, list + i, 16);
	walsync_stop(ws);	/* answers everything first */
}

static void
test_answers_in_order(void **state)
{
	struct writer_job	 jobs[NJOBS];
	struct answers		 a;
	struct walsync		*ws;
	char			*db = scratch_db(), *cause = NULL, wal[4096];
	FILE			*f;
	size_t			 i;

	(void)state;
	/* No WAL yet: start anyway, open it at the first sync. */
	snprintf(wal, sizeof wal, "%s-wal", db);
	assert_non_null(ws = walsync_start(wal, &cause));
	assert_non_null(f = fopen(wal, "w"));
	fputs("frames", f);
	fclose(f);
	run_jobs(ws, jobs, &a);
	assert_int_equal(a.n, NJOBS);
	for (i = 0; i < NJOBS; i++) {
		assert_int_equal(a.order[i], (int)i);
		assert_int_equal(jobs[i].status, i % 5 == 0 ? 400 : 200);
		assert_string_equal(jobs[i].body, "{}");
		free(jobs[i].body);
	}
	remove_db(db);
}

static void
test_name_removed(void **state)
{
	struct writer_job	 first, jobs[NJOBS], *list = &first;
	struct answers		 a, b;
	struct walsync		*ws;
	char			*db = scratch_db(), *cause = NULL, wal[4096];
	FILE			*f;
	size_t			 i;
	int			 waited;

	(void)state;
	snprintf(wal, sizeof wal, "%s-wal", db);
	assert_non_null(f = fopen(wal, "w"));
	fclose(f);
	assert_non_null(ws = walsync_start(wal, &cause));
	memset(&first, 0, sizeof first);
	memset(&a, 0, sizeof a);
	first.status = 200;
	first.done = done_cb;
	first.done_arg = &a;
	walsync_submit(ws, &list, 1);
	for (waited = 0; a.n == 0 && waited < 5000; waited++)
		usleep(1000);
	assert_int_equal(a.n, 1);
	assert_int_equal(first.status, 200);
	assert_int_equal(unlink(wal), 0);
	run_jobs(ws, jobs, &b);
	assert_int_equal(b.n, NJOBS);
	for (i = 0; i < NJOBS; i++) {
		assert_int_equal(jobs[i].status, i % 5 == 0 ? 400 : 200);
		free(jobs[i].body);
	}
	remove_db(db);
}

static void
test_sync_failure(void **state)
{
	struct writer_job	 jobs[NJOBS];
	struct answers		 a;
	struct walsync		*ws;
	char			*db = scratch_db(), *cause = NULL, wal[4096];
	size_t			 i;

	(void)state;
	snprintf(wal, sizeof wal, "%s-wal", db);
	assert_int_equal(mkfifo(wal, 0600), 0);
	assert_non_null(ws = walsync_start(wal, &cause));
	run_jobs(ws, jobs, &a);
	assert_int_equal(a.n, NJOBS);
	for (i = 0; i < NJOBS; i++) {
		if (i % 5 == 0) {
			assert_int_equal(jobs[i].status, 400);
			assert_string_equal(jobs[i].body, "{}");
		} else {
			assert_int_equal(jobs[i].status, 503);
			assert_non_null(strstr(jobs[i].body, "overloaded"));
		}
		free(jobs[i].body);
	}
	remove_db(db);
}

static void
test_bad_path(void **state)
{
	char	*cause = NULL;

	(void)state;
	/* A WAL path that cannot exist (its folder is a file). */
	assert_null(walsync_start("/dev/null/x.db-wal", &cause));
	assert_non_null(cause);
	assert_non_null(strstr(cause, "/dev/null/x.db-wal"));
	free(cause);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answers_in_order),
		cmocka_unit_test(test_name_removed),
		cmocka_unit_test(test_sync_failure),
		cmocka_unit_test(test_bad_path),
	};

	return cmocka_run_group_tests_name("walsync", tests, NULL, NULL);
}
