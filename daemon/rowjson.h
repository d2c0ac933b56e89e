/* SPDX-License-Identifier: MIT */
/*
 * rowjson: JSON views of database rows in API.md's shapes (a run, an
 * alert, a number that may be non-finite).  Shared by the readers
 * (query) and the writer thread, each with its own connection; the
 * functions prepare their statements per call and keep no state.
 */
#ifndef GW_ROWJSON_H
#define GW_ROWJSON_H

#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

/* A JSON number, or the string "NaN", "Infinity", "-Infinity". */
json_t	*rowjson_number(double v);
/* Decode a REAL column with its companion class column (schema 0001). */
double	 rowjson_column_value(sqlite3_stmt *st, int value_col, int class_col);
/* Class (0 finite, 1 NaN, 2 +Inf, 3 -Inf) of v, for the *_class columns. */
int	 rowjson_class(double v);
/*
 * The columns of a run and of an alert, for statements that end with a
 * WHERE and whose rows rowjson_run_row() and rowjson_alert_row() turn
 * into API.md's objects.
 */
#define ROWJSON_RUN_SQL							\
	"SELECT key, project, status, health, first_step, last_step,"	\
	" started_at, last_seen, points, dropped, config, meta,"	\
	" (SELECT count(*) FROM alerts"				\
	"  WHERE alerts.run_id = runs.id AND state = 'firing')"	\
	" FROM runs"
#define ROWJSON_ALERT_SQL						\
	"SELECT a.id, r.key, a.kind, a.severity, a.state, a.series,"	\
	" a.onset_step, a.fire_step, a.resolve_step, a.fired_at,"	\
	" a.resolved_at, a.value, a.value_class, a.baseline, a.threshold," \
	" a.message, a.detail FROM alerts a JOIN runs r ON r.id = a.run_id"
/* The run or alert in the current row of st. */
json_t	*rowjson_run_row(sqlite3_stmt *st);
json_t	*rowjson_alert_row(sqlite3_stmt *st);
/* The run with id run_id in API.md's shape; NULL if absent. */
json_t	*rowjson_run(sqlite3 *db, int64_t run_id);
/* The run's firing alerts, oldest first (an array, possibly empty). */
json_t	*rowjson_firing_alerts(sqlite3 *db, int64_t run_id);
/* The alert with id alert_id in API.md's shape; NULL if absent. */
json_t	*rowjson_alert(sqlite3 *db, int64_t alert_id);

#endif
