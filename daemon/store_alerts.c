/* SPDX-License-Identifier: MIT */
/*
 * store_alerts: alert rows from detector events; see store_alerts.h.
 * The statements are prepared once with the store's (store_open) and
 * their bindings cleared before each use, since most parameters are
 * optional.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "detector.h"
#include "store.h"
#include "store_alerts.h"
#include "store_int.h"
#include "wire.h"
#include "xmalloc.h"

const char *const store_alerts_sql[AID_COUNT] = {
	[AID_FIRE] =
	    "INSERT INTO alerts (run_id, kind, severity, state, series,"
	    " onset_step, fire_step, fired_at, value, value_class, baseline,"
	    " threshold, message, detail)"
	    " VALUES (?1, ?2, ?3, 'firing', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
	    " ?12, ?13)",
	[AID_UPDATE] =
	    "UPDATE alerts SET severity = ?4, value = ?5, value_class = ?6,"
	    " baseline = ?7, threshold = ?8, message = ?9,"
	    " detail = COALESCE(?10, detail)"
	    " WHERE run_id = ?1 AND kind = ?2 AND series IS ?3"
	    " AND state = 'firing' RETURNING id",
	[AID_RESOLVE] =
	    "UPDATE alerts SET state = 'resolved', resolve_step = ?4,"
	    " resolved_at = ?5,"
	    " detail = json_patch(json_set(COALESCE(detail, '{}'),"
	    "   '$.resolution', ?6), COALESCE(?7, '{}'))"
	    " WHERE run_id = ?1 AND kind = ?2 AND series IS ?3"
	    " AND state = 'firing' RETURNING id",
	[AID_SYNC_RUN] =
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
	    " WHERE id = ?1",
	[AID_RESOLVE_STALL] =
	    "UPDATE alerts SET state = 'resolved', resolve_step = ?2,"
	    " resolved_at = ?3,"
	    " detail = json_set(COALESCE(detail, '{}'), '$.resolution',"
	    "   'the run ended')"
	    " WHERE run_id = ?1 AND kind = 'stall' AND state = 'firing'"
	    " RETURNING id",
	[AID_EACH_FIRING] =
	    "SELECT a.run_id, a.kind, COALESCE(a.series, ''), a.severity,"
	    " COALESCE(a.onset_step, -1), COALESCE(a.fire_step, -1)"
	    " FROM alerts a JOIN runs r ON r.id = a.run_id"
	    " WHERE a.state = 'firing' AND r.status IN ('running', 'stalled')"
	    " ORDER BY a.id",
};

/* Statement id, reset and with no parameter bound. */
static sqlite3_stmt *
store_alerts_stmt(struct store *st, enum store_aid id)
{
	sqlite3_reset(st->alerts[id]);
	sqlite3_clear_bindings(st->alerts[id]);
	return st->alerts[id];
}

static int
store_alerts_fail(struct store *st, sqlite3_stmt *s, const char *what,
    char **cause)
{
	xasprintf(cause, "store: alerts: %s: %s", what, sqlite3_errmsg(st->db));
	sqlite3_reset(s);
	return -1;
}

static void
store_alerts_bind_real(sqlite3_stmt *s, int col, double v)
{
	if (isfinite(v))
		sqlite3_bind_double(s, col, v);
	else
		sqlite3_bind_null(s, col);
}

/* The series column: NULL for run-level alerts. */
static void
store_alerts_bind_series(sqlite3_stmt *s, int col, const char *series)
{
	if (series == NULL || *series == '\0')
		sqlite3_bind_null(s, col);
	else
		sqlite3_bind_text(s, col, series, -1, SQLITE_STATIC);
}

static int
store_alerts_fire(struct store *st, const struct detector_event *ev,
    double now, int64_t *alert_id, char **cause)
{
	sqlite3_stmt	*s = store_alerts_stmt(st, AID_FIRE);

	sqlite3_bind_int64(s, 1, ev->run_id);
	sqlite3_bind_text(s, 2, alert_kind_name(ev->kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, alert_severity_name(ev->severity), -1,
	    SQLITE_STATIC);
	store_alerts_bind_series(s, 4, ev->series);
	if (ev->onset_step >= 0)
		sqlite3_bind_int64(s, 5, ev->onset_step);
	sqlite3_bind_int64(s, 6, ev->fire_step);
	sqlite3_bind_double(s, 7, now);
	store_alerts_bind_real(s, 8, ev->value);
	sqlite3_bind_int(s, 9, wire_class(ev->value));
	store_alerts_bind_real(s, 10, ev->baseline);
	store_alerts_bind_real(s, 11, ev->threshold);
	sqlite3_bind_text(s, 12, ev->message, -1, SQLITE_STATIC);
	if (ev->detail_json != NULL)
		sqlite3_bind_text(s, 13, ev->detail_json, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_DONE)
		return store_alerts_fail(st, s, "insert", cause);
	*alert_id = sqlite3_last_insert_rowid(st->db);
	sqlite3_reset(s);
	return 0;
}

/* Update or resolve the firing alert with ev's identity. */
static int
store_alerts_change(struct store *st, const struct detector_event *ev,
    double now, int64_t *alert_id, char **cause)
{
	sqlite3_stmt	*s;
	int		 rc;

	s = store_alerts_stmt(st, ev->type == DETECTOR_UPDATE ? AID_UPDATE :
	    AID_RESOLVE);
	sqlite3_bind_int64(s, 1, ev->run_id);
	sqlite3_bind_text(s, 2, alert_kind_name(ev->kind), -1, SQLITE_STATIC);
	store_alerts_bind_series(s, 3, ev->series);
	if (ev->type == DETECTOR_UPDATE) {
		sqlite3_bind_text(s, 4, alert_severity_name(ev->severity), -1,
		    SQLITE_STATIC);
		store_alerts_bind_real(s, 5, ev->value);
		sqlite3_bind_int(s, 6, wire_class(ev->value));
		store_alerts_bind_real(s, 7, ev->baseline);
		store_alerts_bind_real(s, 8, ev->threshold);
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
		return store_alerts_fail(st, s, "update", cause);
	sqlite3_reset(s);
	return 0;
}

int
store_alerts_apply(struct store *st, const struct detector_event *ev,
    double now, int64_t *alert_id, char **cause)
{
	if (ev->type == DETECTOR_FIRE)
		return store_alerts_fire(st, ev, now, alert_id, cause);
	return store_alerts_change(st, ev, now, alert_id, cause);
}

int
store_alerts_sync_run(struct store *st, int64_t run_id, int *changed,
    char **cause)
{
	sqlite3_stmt	*s = store_alerts_stmt(st, AID_SYNC_RUN);

	sqlite3_bind_int64(s, 1, run_id);
	if (sqlite3_step(s) != SQLITE_DONE)
		return store_alerts_fail(st, s, "health", cause);
	sqlite3_reset(s);
	/*
	 * UPDATE counts a row as changed even when the values stay; the
	 * caller re-reads the run anyway, so err towards "changed".
	 */
	*changed = sqlite3_changes(st->db) > 0;
	return 0;
}

int
store_alerts_resolve_stall(struct store *st, int64_t run_id, int64_t step,
    double now, int64_t *alert_id, char **cause)
{
	sqlite3_stmt	*s = store_alerts_stmt(st, AID_RESOLVE_STALL);
	int		 rc;

	sqlite3_bind_int64(s, 1, run_id);
	if (step >= 0)
		sqlite3_bind_int64(s, 2, step);
	sqlite3_bind_double(s, 3, now);
	*alert_id = -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		*alert_id = sqlite3_column_int64(s, 0);
	if (rc != SQLITE_DONE)
		return store_alerts_fail(st, s, "resolve stall", cause);
	sqlite3_reset(s);
	return 0;
}

int
store_alerts_each_firing(struct store *st, store_alerts_firing_cb cb,
    void *arg, char **cause)
{
	sqlite3_stmt	*s = store_alerts_stmt(st, AID_EACH_FIRING);
	int		 rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		cb(arg, sqlite3_column_int64(s, 0),
		    (const char *)sqlite3_column_text(s, 1),
		    (const char *)sqlite3_column_text(s, 2),
		    (const char *)sqlite3_column_text(s, 3),
		    sqlite3_column_int64(s, 4), sqlite3_column_int64(s, 5));
	if (rc != SQLITE_DONE)
		return store_alerts_fail(st, s, "firing", cause);
	sqlite3_reset(s);
	return 0;
}
