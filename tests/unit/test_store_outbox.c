/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of store_outbox.c on an in-memory store: who hears of an
 * alert change (least severity, projects, and "once heard, hears to the
 * resolve"), the per-alert sequence, the stored notice, delivery marks,
 * pruning, and receivers that are no longer configured.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "detector.h"
#include "receiver.h"
#include "store.h"
#include "store_int.h"
#include "store_outbox.h"

/* The tests read the writer's connection directly (white box). */
#define store_db(st)	((st)->db)

#define NOW	1764061200.0

struct fixture {
	struct store		*st;
	sqlite3			*db;
	struct receiver		 rcv[3];
	struct store_outbox	*ob;
};

static void
exec(sqlite3 *db, const char *sql)
{
	char	*err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
}

static int64_t
int_of(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*s;
	int64_t		 v = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* "receiver:seq:status" of every notice, in id order, joined by spaces. */
static char *
notices(sqlite3 *db)
{
	sqlite3_stmt	*s;
	char		*out = calloc(1, 4096);

	assert_int_equal(sqlite3_prepare_v2(db, "SELECT receiver, seq, status"
	    " FROM notices ORDER BY id", -1, &s, NULL), SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW)
		snprintf(out + strlen(out), 4096 - strlen(out), "%s%s:%d:%s",
		    *out != '\0' ? " " : "", sqlite3_column_text(s, 0),
		    sqlite3_column_int(s, 1), sqlite3_column_text(s, 2));
	sqlite3_finalize(s);
	return out;
}

static void
assert_notices(sqlite3 *db, const char *want)
{
	char	*got = notices(db);

	if (strcmp(got, want) != 0)
		fail_msg("notices\n got: %s\nwant: %s", got, want);
	free(got);
}

static int
setup(void **state)
{
	struct fixture	*f = calloc(1, sizeof *f);
	char		*cause = NULL;

	f->st = store_open(":memory:", &cause);
	assert_non_null(f->st);
	f->db = store_db(f->st);
	assert_int_equal(receiver_parse(&f->rcv[0], RECEIVER_WEBHOOK,
	    "http://h/all name=all", &cause), 0);
	assert_int_equal(receiver_parse(&f->rcv[1], RECEIVER_ALERTMANAGER,
	    "http://am severity=critical name=crit", &cause), 0);
	assert_int_equal(receiver_parse(&f->rcv[2], RECEIVER_SLACK,
	    "http://s/x project=other name=other", &cause), 0);
	f->ob = store_outbox_new(f->st, f->rcv, 3, "http://gw:7070", &cause);
	assert_non_null(f->ob);
	exec(f->db, "INSERT INTO runs (id, key, project, started_at, last_seen)"
	    " VALUES (1, 'r1', 'cifar', 0, 0), (2, 'r2', 'other', 0, 0)");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;
	int		 i;

	store_outbox_free(f->ob);
	store_close(f->st);
	for (i = 0; i < 3; i++)
		receiver_cleanup(&f->rcv[i]);
	free(f);
	return 0;
}

static void
fire(sqlite3 *db, int id, int run, const char *severity)
{
	char	sql[256];

	snprintf(sql, sizeof sql, "INSERT INTO alerts (id, run_id, kind,"
	    " severity, state, fire_step, fired_at, message) VALUES (%d, %d,"
	    " 'nonfinite', '%s', 'firing', 50, 100, 'loss is NaN')", id, run,
	    severity);
	exec(db, sql);
}

static void
add(struct fixture *f, int id, enum notice_change change, int prev, int want)
{
	char	*cause = NULL;

	assert_int_equal(store_outbox_add(f->ob, id, change, prev, NOW,
	    &cause), want);
}

static void
test_audience(void **state)
{
	struct fixture	*f = *state;

	fire(f->db, 1, 1, "warning");
	add(f, 1, NOTICE_FIRED, ALERT_WARNING, 1);
	assert_notices(f->db, "all:1:firing");
	/* Critical now: the Alertmanager hears of it from here on. */
	exec(f->db, "UPDATE alerts SET severity = 'critical' WHERE id = 1");
	add(f, 1, NOTICE_SEVERITY, ALERT_WARNING, 2);
	exec(f->db, "UPDATE alerts SET severity = 'warning' WHERE id = 1");
	add(f, 1, NOTICE_SEVERITY, ALERT_CRITICAL, 2);
	exec(f->db, "UPDATE alerts SET state = 'resolved', resolve_step = 60,"
	    " resolved_at = 200 WHERE id = 1");
	add(f, 1, NOTICE_RESOLVED, ALERT_WARNING, 2);
	assert_notices(f->db, "all:1:firing all:2:firing crit:2:firing "
	    "all:3:firing crit:3:firing all:4:resolved crit:4:resolved");

	/* A warning that fires and resolves never reaches "crit". */
	fire(f->db, 2, 1, "warning");
	add(f, 2, NOTICE_FIRED, ALERT_WARNING, 1);
	exec(f->db, "UPDATE alerts SET state = 'resolved' WHERE id = 2");
	add(f, 2, NOTICE_RESOLVED, ALERT_WARNING, 1);
	/* A run of project "other": "other" hears too. */
	fire(f->db, 3, 2, "critical");
	add(f, 3, NOTICE_FIRED, ALERT_CRITICAL, 3);
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM notices WHERE"
	    " alert_id = 2 AND receiver = 'crit'"), 0);
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM notices WHERE"
	    " alert_id = 3"), 3);
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM notices WHERE"
	    " receiver = 'other' AND alert_id != 3"), 0);
	/* An alert that is gone is an error, not a silent loss. */
	{
		char	*cause = NULL;

		assert_int_equal(store_outbox_add(f->ob, 99, NOTICE_FIRED,
		    ALERT_WARNING, NOW, &cause), -1);
		assert_non_null(strstr(cause, "99"));
		free(cause);
	}
}

static void
test_body(void **state)
{
	struct fixture	*f = *state;
	sqlite3_stmt	*s;
	json_t		*n;

	fire(f->db, 1, 1, "critical");
	add(f, 1, NOTICE_FIRED, ALERT_CRITICAL, 2);
	assert_int_equal(sqlite3_prepare_v2(f->db, "SELECT body, created_at"
	    " FROM notices WHERE receiver = 'crit'", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	n = json_loads((const char *)sqlite3_column_text(s, 0), 0, NULL);
	assert_non_null(n);
	assert_true(sqlite3_column_double(s, 1) == NOW);
	sqlite3_finalize(s);
	assert_int_equal(json_integer_value(json_object_get(n, "seq")), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(n,
	    "alert"), "message")), "loss is NaN");
	assert_string_equal(json_string_value(json_object_get(json_object_get(n,
	    "run"), "project")), "cifar");
	assert_int_equal(strlen(json_string_value(json_object_get(n, "id"))),
	    16 + 2);	/* 16 hex digits of the instance, "-1" */
	assert_string_equal(json_string_value(json_object_get(n, "dashboard")),
	    "http://gw:7070/#/run/r1?from=30&to=70");
	json_decref(n);
}

static void
test_marks_and_prune(void **state)
{
	struct fixture	*f = *state;
	char		*cause = NULL;

	fire(f->db, 1, 1, "critical");
	add(f, 1, NOTICE_FIRED, ALERT_CRITICAL, 2);
	assert_int_equal(store_outbox_done(f->ob, 1, 1, 1, NULL, NOW, &cause), 0);
	assert_int_equal(store_outbox_done(f->ob, 2, 0, 3, "HTTP 400: no",
	    NOW, &cause), 0);
	/* A late repeat of a mark changes nothing. */
	assert_int_equal(store_outbox_done(f->ob, 1, 0, 9, "x", NOW, &cause), 0);
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM notices WHERE"
	    " id = 1 AND state = 'sent' AND attempts = 1"), 1);
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM notices WHERE"
	    " id = 2 AND state = 'dropped' AND attempts = 3 AND last_error ="
	    " 'HTTP 400: no'"), 1);
	/* A receiver gone from the configuration: its pending rows dropped. */
	exec(f->db, "INSERT INTO notices (receiver, alert_id, seq, status,"
	    " created_at, body) VALUES ('gone', 1, 9, 'firing', 0, '{}'),"
	    " ('all', 1, 10, 'firing', 0, '{}')");
	assert_int_equal(store_outbox_prune(f->ob, NOW, &cause), 0);
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM notices WHERE"
	    " receiver = 'gone' AND state = 'dropped'"), 1);
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM notices WHERE"
	    " state = 'pending'"), 1);
	/* Done rows go a week after their alert resolved; pending stay. */
	exec(f->db, "UPDATE alerts SET state = 'resolved', resolved_at = 0");
	assert_int_equal(store_outbox_prune(f->ob, 6 * 86400.0, &cause), 0);
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM notices"), 4);
	assert_int_equal(store_outbox_prune(f->ob, 8 * 86400.0, &cause), 0);
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM notices"), 1);
	assert_int_equal(int_of(f->db, "SELECT seq FROM notices"), 10);
}

static void
test_no_receivers(void **state)
{
	struct fixture		*f = *state;
	struct store_outbox	*none;
	char			*cause = NULL;

	none = store_outbox_new(f->st, NULL, 0, "http://gw", &cause);
	assert_non_null(none);
	fire(f->db, 1, 1, "critical");
	assert_int_equal(store_outbox_add(none, 1, NOTICE_FIRED, ALERT_CRITICAL,
	    NOW, &cause), 0);
	assert_int_equal(int_of(f->db, "SELECT count(*) FROM notices"), 0);
	store_outbox_free(none);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_audience, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_marks_and_prune, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_receivers, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
