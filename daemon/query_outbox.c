/* SPDX-License-Identifier: MIT */
/*
 * query_outbox: reads of the outbox for the notifier; see
 * query_outbox.h.  Each call is one short read transaction (SQLite's
 * implicit one around a statement), so the WAL is never pinned.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "notice.h"
#include "query_outbox.h"
#include "store_rowjson.h"
#include "xmalloc.h"

#define QUERY_OUTBOX_BUSY_MS	5000
#define QUERY_OUTBOX_FIRING_MAX	1000	/* alerts re-sent in one post */

enum qo_stmt {
	QO_NEXT,
	QO_FIRING,
	QO_DEPTH,
	QO_INSTANCE,
	QO_ALERT,
	QO_RUN,
	QO_COUNT
};

static const char *const qo_sql[QO_COUNT] = {
	[QO_NEXT] =
	    "SELECT id, body FROM notices WHERE receiver = ?1 AND id > ?2"
	    " AND state = 'pending' ORDER BY id LIMIT 1",
	[QO_FIRING] =
	    "SELECT a.id, a.run_id FROM alerts a JOIN runs r ON r.id = a.run_id"
	    " WHERE a.state = 'firing' AND r.status IN ('running', 'stalled')"
	    " AND r.last_seen >= ?2 AND EXISTS (SELECT 1 FROM notices n"
	    "  WHERE n.alert_id = a.id AND n.receiver = ?1)"
	    " ORDER BY a.id LIMIT ?3",
	[QO_DEPTH] =
	    "SELECT count(*) FROM notices WHERE receiver = ?1"
	    " AND state = 'pending'",
	[QO_INSTANCE] = "SELECT value FROM settings WHERE name = 'instance'",
	[QO_ALERT] = STORE_ROWJSON_ALERT_SQL " WHERE a.id = ?1",
	[QO_RUN] = STORE_ROWJSON_RUN_SQL " WHERE id = ?1",
};

struct query_outbox {
	sqlite3		*db;
	sqlite3_stmt	*st[QO_COUNT];
};

struct query_outbox *
query_outbox_open(const char *path, char **cause)
{
	struct query_outbox	*qo;
	int			 i;

	if (strcmp(path, ":memory:") == 0) {
		xasprintf(cause, "notifications need a database file, not "
		    ":memory:");
		return NULL;
	}
	qo = xcalloc(1, sizeof *qo);
	if (sqlite3_open_v2(path, &qo->db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		xasprintf(cause, "%s: %s", path, qo->db != NULL ?
		    sqlite3_errmsg(qo->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(qo->db, QUERY_OUTBOX_BUSY_MS);
	for (i = 0; i < QO_COUNT; i++)
		if (sqlite3_prepare_v3(qo->db, qo_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &qo->st[i], NULL) != SQLITE_OK) {
			xasprintf(cause, "%s: %s", path, sqlite3_errmsg(qo->db));
			goto fail;
		}
	return qo;

fail:
	query_outbox_close(qo);
	return NULL;
}

void
query_outbox_close(struct query_outbox *qo)
{
	int	i;

	if (qo == NULL)
		return;
	for (i = 0; i < QO_COUNT; i++)
		sqlite3_finalize(qo->st[i]);
	sqlite3_close(qo->db);
	free(qo);
}

static sqlite3_stmt *
query_outbox_stmt(struct query_outbox *qo, enum qo_stmt i)
{
	sqlite3_reset(qo->st[i]);
	sqlite3_clear_bindings(qo->st[i]);
	return qo->st[i];
}

int
query_outbox_next(struct query_outbox *qo, const char *receiver,
    int64_t after, int64_t *id, char **body, char **cause)
{
	sqlite3_stmt	*s = query_outbox_stmt(qo, QO_NEXT);
	int		 rc;

	sqlite3_bind_text(s, 1, receiver, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, after);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(s, 0);
		*body = xstrdup((const char *)sqlite3_column_text(s, 1));
		sqlite3_reset(s);
		return 1;
	}
	if (rc != SQLITE_DONE)
		xasprintf(cause, "outbox: next: %s", sqlite3_errmsg(qo->db));
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static char *
query_outbox_instance(struct query_outbox *qo)
{
	sqlite3_stmt	*s = query_outbox_stmt(qo, QO_INSTANCE);
	char		*v = NULL;

	if (sqlite3_step(s) == SQLITE_ROW)
		v = xstrdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_reset(s);
	return v;
}

json_t *
query_outbox_firing(struct query_outbox *qo, const char *receiver,
    double since, const char *external_url, double now, char **cause)
{
	struct notice_head	 h;
	sqlite3_stmt		*s;
	json_t			*arr, *alert, *run;
	char			*instance;
	int			 rc;

	/* One read transaction for the list and the rows it names. */
	if (sqlite3_exec(qo->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		xasprintf(cause, "outbox: begin: %s", sqlite3_errmsg(qo->db));
		return NULL;
	}
	instance = query_outbox_instance(qo);
	memset(&h, 0, sizeof h);
	h.instance = instance != NULL ? instance : "";
	h.change = NOTICE_FIRED;
	h.external_url = external_url;
	h.time = now;
	arr = json_array();
	s = query_outbox_stmt(qo, QO_FIRING);
	sqlite3_bind_text(s, 1, receiver, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 2, since);
	sqlite3_bind_int(s, 3, QUERY_OUTBOX_FIRING_MAX);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		h.alert_id = sqlite3_column_int64(s, 0);
		alert = store_rowjson_one(query_outbox_stmt(qo, QO_ALERT),
		    h.alert_id, store_rowjson_alert);
		run = store_rowjson_one(query_outbox_stmt(qo, QO_RUN),
		    sqlite3_column_int64(s, 1), store_rowjson_run);
		if (alert != NULL && run != NULL)
			json_array_append_new(arr, notice_new(&h, alert, run));
		else {
			json_decref(alert);
			json_decref(run);
		}
	}
	if (rc != SQLITE_DONE) {
		xasprintf(cause, "outbox: firing: %s", sqlite3_errmsg(qo->db));
		json_decref(arr);
		arr = NULL;
	}
	sqlite3_reset(s);
	sqlite3_exec(qo->db, "COMMIT", NULL, NULL, NULL);
	free(instance);
	return arr;
}

int64_t
query_outbox_depth(struct query_outbox *qo, const char *receiver)
{
	sqlite3_stmt	*s = query_outbox_stmt(qo, QO_DEPTH);
	int64_t		 n = -1;

	sqlite3_bind_text(s, 1, receiver, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return n;
}
