/* SPDX-License-Identifier: MIT */
/*
 * alertstore: alert rows from detector events; see alertstore.h.  The
 * statements are prepared per call: events are rare next to points.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alertstore.h"
#include "rowjson.h"
#include "xmalloc.h"

static int
alertstore_fail(sqlite3 *db, sqlite3_stmt *s, const char *what, char **cause)
{
	xasprintf(cause, "alertstore: %s: %s", what, sqlite3_errmsg(db));
	sqlite3_finalize(s);
	return -1;
}

static void
alertstore_bind_real(sqlite3_stmt *s, int col, double v)
{
	if (isfinite(v))
		sqlite3_bind_double(s, col, v);
	else
		sqlite3_bind_null(s, col);
}

/* The series column: NULL for run-level alerts. */
static void
alertstore_bind_series(sqlite3_stmt *s, int col, const char *series)
{
	if (series == NULL || *series == '\0')
		sqlite3_bind_null(s, col);
	else
		sqlite3_bind_text(s, col, series, -1, SQLITE_STATIC);
}

static int
alertstore_fire(sqlite3 *db, const struct detector_event *ev, double now,
    int64_t *alert_id, char **cause)
{
	static const char sql[] =
	    "INSERT INTO alerts (run_id, kind, severity, state, series,"
	    " onset_step, fire_step, fired_at, value, value_class, baseline,"
	    " threshold, message, detail)"
	    " VALUES (?1, ?2, ?3, 'firing', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
	    " ?12, ?13)";
	sqlite3_stmt	*s = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return alertstore_fail(db, s, "prepare fire", cause);
	sqlite3_bind_int64(s, 1, ev->run_id);
	sqlite3_bind_text(s, 2, alert_kind_name(ev->kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, alert_severity_name(ev->severity), -1,
	    SQLITE_STATIC);
	alertstore_bind_series(s, 4, ev->series);
	if (ev->onset_step >= 0)
		sqlite3_bind_int64(s, 5, ev->onset_step);
	sqlite3_bind_int64(s, 6, ev->fire_step);
	sqlite3_bind_double(s, 7, now);
	alertstore_bind_real(s, 8, ev->value);
	sqlite3_bind_int(s, 9, rowjson_class(ev->value));
	alertstore_bind_real(s, 10, ev->baseline);
	alertstore_bind_real(s, 11, ev->threshold);
	sqlite3_bind_text(s, 12, ev->message, -1, SQLITE_STATIC);
	if (ev->detail_json != NULL)
		sqlite3_bind_text(s, 13, ev->detail_json, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		return alertstore_fail(db, s, "insert", cause);
	*alert_id = sqlite3_last_insert_rowid(db);
	sqlite3_finalize(s);
	return 0;
}

/* Update or resolve the firing alert with ev's identity. */
static int
alertstore_change(sqlite3 *db, const struct detector_event *ev, double now,
    int64_t *alert_id, char **cause)
{
	static const char update[] =
	    "UPDATE alerts SET severity = ?4, value = ?5, value_class = ?6,"
	    " baseline = ?7, threshold = ?8, message = ?9,"
	    " detail = COALESCE(?10, detail)"
	    " WHERE run_id = ?1 AND kind = ?2 AND series IS ?3"
	    " AND state = 'firing' RETURNING id";
	static const char resolve[] =
	    "UPDATE alerts SET state = 'resolved', resolve_step = ?4,"
	    " resolved_at = ?5,"
	    " detail = json_patch(json_set(COALESCE(detail, '{}'),"
	    "   '$.resolution', ?6), COALESCE(?7, '{}'))"
	    " WHERE run_id = ?1 AND kind = ?2 AND series IS ?3"
	    " AND state = 'firing' RETURNING id";
	sqlite3_stmt	*s = NULL;
	int		 rc;

	if (sqlite3_prepare_v2(db, ev->type == DETECTOR_UPDATE ? update :
	    resolve, -1, &s, NULL) != SQLITE_OK)
		return alertstore_fail(db, s, "prepare change", cause);
	sqlite3_bind_int64(s, 1, ev->run_id);
	sqlite3_bind_text(s, 2, alert_kind_name(ev->kind), -1, SQLITE_STATIC);
	alertstore_bind_series(s, 3, ev->series);
	if (ev->type == DETECTOR_UPDATE) {
		sqlite3_bind_text(s, 4, alert_severity_name(ev->severity), -1,
		    SQLITE_STATIC);
		alertstore_bind_real(s, 5, ev->value);
		sqlite3_bind_int(s, 6, rowjson_class(ev->value));
		alertstore_bind_real(s, 7, ev->baseline);
		alertstore_bind_real(s, 8, ev->threshold);
		sqlite3_bind_text(s, 9, ev->message, -1, SQLITE_STATIC);
		if (ev->detail_json != NULL)
			sqlite3_bind_text(s, 10, ev->detail_json, -1,
			    SQLITE_STATIC);
	} else {
		sqlite3_bind_int64(s, 4, ev->resolve_step);
		sqlite3_bind_double(s, 5, now);
		sqlite3_bind_text(s, 6, ev->message, -1, SQLITE_STATIC);
		if (ev->detail_json != NULL)	/* e.g. an explosion's lead time */
			sqlite3_bind_text(s, 7, ev->detail_json, -1,
			    SQLITE_STATIC);
	}
	*alert_id = -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		*alert_id = sqlite3_column_int64(s, 0);
	if (rc != SQLITE_DONE)
		return alertstore_fail(db, s, "update", cause);
	sqlite3_finalize(s);
	return 0;
}

int
alertstore_apply(sqlite3 *db, const struct detector_event *ev, double now,
    int64_t *alert_id, char **cause)
{
	if (ev->type == DETECTOR_FIRE)
		return alertstore_fire(db, ev, now, alert_id, cause);
	return alertstore_change(db, ev, now, alert_id, cause);
}

int
alertstore_sync_run(sqlite3 *db, int64_t run_id, int *changed, char **cause)
{
	static const char sql[] =
	    "UPDATE runs SET"
	    " health = (SELECT CASE MAX(CASE severity WHEN 'critical' THEN 2"
	    "   WHEN 'warning' THEN 1 ELSE 0 END)"
	    "   WHEN 2 THEN 'critical' WHEN 1 THEN 'warning' ELSE 'ok' END"
	    "   FROM alerts WHERE run_id = ?1 AND state = 'firing'),"
	    " status = CASE"
	    "   WHEN status = 'running' AND EXISTS (SELECT 1 FROM alerts"
	    "     WHERE run_id = ?1 AND state = 'firing' AND kind = 'stall')"
	    "   THEN 'stalled'"
	    "   WHEN status = 'stalled' AND NOT EXISTS (SELECT 1 FROM alerts"
	    "     WHERE run_id = ?1 AND state = 'firing' AND kind = 'stall')"
	    "   THEN 'running' ELSE status END"
	    " WHERE id = ?1";
	sqlite3_stmt	*s = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return alertstore_fail(db, s, "prepare health", cause);
	sqlite3_bind_int64(s, 1, run_id);
	if (sqlite3_step(s) != SQLITE_DONE)
		return alertstore_fail(db, s, "health", cause);
	sqlite3_finalize(s);
	/*
	 * UPDATE counts a row as changed even when the values stay; the
	 * caller re-reads the run anyway, so err towards "changed".
	 */
	*changed = sqlite3_changes(db) > 0;
	return 0;
}

int
alertstore_resolve_stall(sqlite3 *db, int64_t run_id, int64_t step,
    double now, int64_t *alert_id, char **cause)
{
	static const char sql[] =
	    "UPDATE alerts SET state = 'resolved', resolve_step = ?2,"
	    " resolved_at = ?3,"
	    " detail = json_set(COALESCE(detail, '{}'), '$.resolution',"
	    "   'the run ended')"
	    " WHERE run_id = ?1 AND kind = 'stall' AND state = 'firing'"
	    " RETURNING id";
	sqlite3_stmt	*s = NULL;
	int		 rc;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return alertstore_fail(db, s, "prepare stall", cause);
	sqlite3_bind_int64(s, 1, run_id);
	if (step >= 0)
		sqlite3_bind_int64(s, 2, step);
	sqlite3_bind_double(s, 3, now);
	*alert_id = -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		*alert_id = sqlite3_column_int64(s, 0);
	if (rc != SQLITE_DONE)
		return alertstore_fail(db, s, "resolve stall", cause);
	sqlite3_finalize(s);
	return 0;
}

int
alertstore_each_firing(sqlite3 *db, alertstore_firing_cb cb, void *arg,
    char **cause)
{
	static const char sql[] =
	    "SELECT a.run_id, a.kind, COALESCE(a.series, ''), a.severity,"
	    " COALESCE(a.onset_step, -1), COALESCE(a.fire_step, -1)"
	    " FROM alerts a JOIN runs r ON r.id = a.run_id"
	    " WHERE a.state = 'firing' AND r.status IN ('running', 'stalled')"
	    " ORDER BY a.id";
	sqlite3_stmt	*s = NULL;
	int		 rc;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return alertstore_fail(db, s, "prepare firing", cause);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		cb(arg, sqlite3_column_int64(s, 0),
		    (const char *)sqlite3_column_text(s, 1),
		    (const char *)sqlite3_column_text(s, 2),
		    (const char *)sqlite3_column_text(s, 3),
		    sqlite3_column_int64(s, 4), sqlite3_column_int64(s, 5));
	if (rc != SQLITE_DONE)
		return alertstore_fail(db, s, "firing", cause);
	sqlite3_finalize(s);
	return 0;
}
