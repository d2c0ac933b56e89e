/* SPDX-License-Identifier: MIT */
/*
 * store_outbox: notice rows from alert changes, and their delivery
 * marks; see store_outbox.h.  The notice body is built here, from the
 * alert and run rows as the change left them, so that what a receiver
 * gets later is the state at the change, not at delivery.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "detector.h"
#include "log.h"
#include "notice.h"
#include "receiver.h"
#include "store_rowjson.h"
#include "store_int.h"
#include "store_json.h"
#include "store_outbox.h"
#include "xmalloc.h"

#define STORE_OUTBOX_KEEP_S	(7 * 86400.0)	/* done rows, after resolve */

enum outbox_stmt {
	OS_RUN_OF,
	OS_HEARD,
	OS_SEQ,
	OS_INSERT,
	OS_DONE,
	OS_PRUNE,
	OS_ORPHANS,
	OS_COUNT
};

static const char *const outbox_sql[OS_COUNT] = {
	[OS_RUN_OF] = "SELECT run_id FROM alerts WHERE id = ?1",
	[OS_HEARD] =
	    "SELECT 1 FROM notices WHERE alert_id = ?1 AND receiver = ?2"
	    " LIMIT 1",
	[OS_SEQ] =
	    "SELECT COALESCE(MAX(seq), 0) + 1 FROM notices WHERE alert_id = ?1",
	[OS_INSERT] =
	    "INSERT INTO notices (receiver, alert_id, seq, status,"
	    " created_at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[OS_DONE] =
	    "UPDATE notices SET state = ?2, done_at = ?3, attempts = ?4,"
	    " last_error = ?5 WHERE id = ?1 AND state = 'pending'",
	[OS_PRUNE] =
	    "DELETE FROM notices WHERE state != 'pending' AND alert_id IN"
	    " (SELECT id FROM alerts WHERE state = 'resolved'"
	    "  AND resolved_at < ?1)",
	[OS_ORPHANS] =
	    "UPDATE notices SET state = 'dropped', done_at = ?2,"
	    " last_error = 'the receiver is no longer configured'"
	    " WHERE state = 'pending'"
	    " AND receiver NOT IN (SELECT value FROM json_each(?1))",
};

struct store_outbox {
	struct store		*store;
	sqlite3			*db;		/* store's connection */
	sqlite3_stmt		*st[OS_COUNT];
	const struct receiver	*rcv;
	size_t			 nrcv;
	const char		*external_url;
	char			*instance;	/* settings 'instance' */
	char			*names;		/* JSON array of receiver names */
	int			 pruned_once;
};

static int
store_outbox_err(struct store_outbox *ob, const char *what, char **cause)
{
	xasprintf(cause, "outbox: %s: %s", what, sqlite3_errmsg(ob->db));
	return -1;
}

static sqlite3_stmt *
store_outbox_stmt(struct store_outbox *ob, enum outbox_stmt i)
{
	sqlite3_reset(ob->st[i]);
	sqlite3_clear_bindings(ob->st[i]);
	return ob->st[i];
}

static int
store_outbox_instance(struct store_outbox *ob, char **cause)
{
	sqlite3_stmt	*s = NULL;
	int		 rc = -1;

	if (sqlite3_prepare_v2(ob->db, "SELECT value FROM settings"
	    " WHERE name = 'instance'", -1, &s, NULL) != SQLITE_OK) {
		store_outbox_err(ob, "settings", cause);
		goto out;
	}
	if (sqlite3_step(s) != SQLITE_ROW) {
		xasprintf(cause, "outbox: the database has no instance id");
		goto out;
	}
	ob->instance = xstrdup((const char *)sqlite3_column_text(s, 0));
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

struct store_outbox *
store_outbox_new(struct store *st, const struct receiver *rcv, size_t n,
    const char *external_url, char **cause)
{
	struct store_outbox	*ob;
	json_t			*names;
	size_t			 i;

	ob = xcalloc(1, sizeof *ob);
	ob->store = st;
	ob->db = st->db;
	ob->rcv = rcv;
	ob->nrcv = n;
	ob->external_url = external_url;
	for (i = 0; i < OS_COUNT; i++)
		if (sqlite3_prepare_v3(ob->db, outbox_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &ob->st[i], NULL) != SQLITE_OK) {
			store_outbox_err(ob, "prepare", cause);
			goto fail;
		}
	if (store_outbox_instance(ob, cause) == -1)
		goto fail;
	names = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(names, json_string(rcv[i].name));
	ob->names = json_dumps(names, JSON_COMPACT);
	json_decref(names);
	if (ob->names == NULL)
		fatalx("outbox: json_dumps failed");
	return ob;

fail:
	store_outbox_free(ob);
	return NULL;
}

void
store_outbox_free(struct store_outbox *ob)
{
	size_t	i;

	if (ob == NULL)
		return;
	for (i = 0; i < OS_COUNT; i++)
		sqlite3_finalize(ob->st[i]);
	free(ob->instance);
	free(ob->names);
	free(ob);
}

/* 1 if receiver name has a notice of alert_id, 0 if not, -1 on error. */
static int
store_outbox_heard(struct store_outbox *ob, int64_t alert_id,
    const char *name)
{
	sqlite3_stmt	*s = store_outbox_stmt(ob, OS_HEARD);
	int		 rc;

	sqlite3_bind_int64(s, 1, alert_id);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int
store_outbox_seq(struct store_outbox *ob, int64_t alert_id, int64_t *seq)
{
	sqlite3_stmt	*s = store_outbox_stmt(ob, OS_SEQ);
	int		 rc;

	sqlite3_bind_int64(s, 1, alert_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*seq = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : -1;
}

/*
 * Which receivers hear of this change: want[i] set.  Returns how many,
 * or -1 with *cause.
 */
static int
store_outbox_audience(struct store_outbox *ob, int64_t alert_id,
    enum notice_change change, const json_t *alert, const json_t *run,
    int *want, char **cause)
{
	int	 sev, heard, n = 0;
	size_t	 i;

	sev = alert_severity_parse(json_string_value(json_object_get(alert,
	    "severity")));
	for (i = 0; i < ob->nrcv; i++) {
		want[i] = receiver_wants(&ob->rcv[i], sev,
		    json_string_value(json_object_get(run, "project")));
		if (change == NOTICE_RESOLVED)
			want[i] = 0;	/* only those who heard it fire */
		if (!want[i] && change != NOTICE_FIRED) {
			if ((heard = store_outbox_heard(ob, alert_id,
			    ob->rcv[i].name)) == -1)
				return store_outbox_err(ob, "heard", cause);
			want[i] = heard;
		}
		n += want[i];
	}
	return n;
}

int
store_outbox_add(struct store_outbox *ob, int64_t alert_id,
    enum notice_change change, int prev_severity, double now, char **cause)
{
	struct notice_head	 h;
	json_t			*alert = NULL, *run = NULL, *notice;
	sqlite3_stmt		*s;
	char			*body = NULL;
	int			*want = NULL, n = 0;
	int64_t			 seq;
	size_t			 i;

	if (ob->nrcv == 0)
		return 0;
	s = store_outbox_stmt(ob, OS_RUN_OF);
	sqlite3_bind_int64(s, 1, alert_id);
	if (sqlite3_step(s) == SQLITE_ROW)
		run = store_json_run(ob->store, sqlite3_column_int64(s, 0));
	sqlite3_reset(s);
	if (run == NULL || (alert = store_json_alert(ob->store, alert_id)) == NULL) {
		json_decref(run);
		xasprintf(cause, "outbox: alert %lld or its run vanished",
		    (long long)alert_id);
		return -1;
	}
	want = xcalloc(ob->nrcv, sizeof *want);
	if ((n = store_outbox_audience(ob, alert_id, change, alert, run, want,
	    cause)) <= 0)
		goto out;
	if (store_outbox_seq(ob, alert_id, &seq) == -1) {
		n = store_outbox_err(ob, "seq", cause);
		goto out;
	}
	h.instance = ob->instance;
	h.alert_id = alert_id;
	h.seq = seq;
	h.change = change;
	h.prev_severity = alert_severity_name((enum alert_severity)
	    prev_severity);
	h.external_url = ob->external_url;
	h.time = now;
	notice = notice_new(&h, alert, run);
	alert = run = NULL;
	body = json_dumps(notice, JSON_COMPACT | JSON_REAL_PRECISION(17));
	json_decref(notice);
	if (body == NULL)
		fatalx("outbox: json_dumps failed");
	for (i = 0; i < ob->nrcv; i++) {
		if (!want[i])
			continue;
		s = store_outbox_stmt(ob, OS_INSERT);
		sqlite3_bind_text(s, 1, ob->rcv[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, alert_id);
		sqlite3_bind_int64(s, 3, seq);
		sqlite3_bind_text(s, 4, change == NOTICE_RESOLVED ? "resolved" :
		    "firing", -1, SQLITE_STATIC);
		sqlite3_bind_double(s, 5, now);
		sqlite3_bind_text(s, 6, body, -1, SQLITE_STATIC);
		if (sqlite3_step(s) != SQLITE_DONE) {
			n = store_outbox_err(ob, "insert", cause);
			sqlite3_reset(s);
			goto out;
		}
		sqlite3_reset(s);
	}
out:
	json_decref(alert);
	json_decref(run);
	free(body);
	free(want);
	return n;
}

int
store_outbox_done(struct store_outbox *ob, int64_t id, int sent,
    int attempts, const char *error, double now, char **cause)
{
	sqlite3_stmt	*s = store_outbox_stmt(ob, OS_DONE);
	int		 rc;

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_text(s, 2, sent ? "sent" : "dropped", -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 3, now);
	sqlite3_bind_int(s, 4, attempts);
	if (error != NULL)
		sqlite3_bind_text(s, 5, error, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return store_outbox_err(ob, "mark", cause);
	return 0;
}

int
store_outbox_prune(struct store_outbox *ob, double now, char **cause)
{
	sqlite3_stmt	*s;
	int		 rc;

	if (!ob->pruned_once) {
		s = store_outbox_stmt(ob, OS_ORPHANS);
		sqlite3_bind_text(s, 1, ob->names, -1, SQLITE_STATIC);
		sqlite3_bind_double(s, 2, now);
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		if (rc != SQLITE_DONE)
			return store_outbox_err(ob, "orphans", cause);
		if (sqlite3_changes(ob->db) > 0)
			log_warnx("outbox: gave up %d pending notices of "
			    "receivers no longer configured",
			    sqlite3_changes(ob->db));
		ob->pruned_once = 1;
	}
	s = store_outbox_stmt(ob, OS_PRUNE);
	sqlite3_bind_double(s, 1, now - STORE_OUTBOX_KEEP_S);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return store_outbox_err(ob, "prune", cause);
	return 0;
}
