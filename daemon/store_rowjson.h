/* SPDX-License-Identifier: MIT */
/*
 * store_rowjson: stored rows of runs and alerts as docs/API.md's JSON
 * objects, and a REAL column read back with its class column (schema
 * 0001).  Pure functions of a statement's current row, shared by the
 * writer (store_json.c) and the readers (query*.c), each on its own
 * connection with its own prepared statements; any thread.
 */
#ifndef GW_STORE_ROWJSON_H
#define GW_STORE_ROWJSON_H

#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

/*
 * The columns of a run and of an alert, for statements that end with a
 * WHERE and whose rows store_rowjson_run() and store_rowjson_alert()
 * turn into API.md's objects.
 */
#define STORE_ROWJSON_RUN_SQL						\
	"SELECT key, project, status, health, first_step, last_step,"	\
	" started_at, last_seen, points, dropped, config, meta,"	\
	" (SELECT count(*) FROM alerts"				\
	"  WHERE alerts.run_id = runs.id AND state = 'firing'),"	\
	" tags, note FROM runs"
#define STORE_ROWJSON_ALERT_SQL						\
	"SELECT a.id, r.key, a.kind, a.severity, a.state, a.series,"	\
	" a.onset_step, a.fire_step, a.resolve_step, a.fired_at,"	\
	" a.resolved_at, a.value, a.value_class, a.baseline, a.threshold," \
	" a.message, a.detail FROM alerts a JOIN runs r ON r.id = a.run_id"

/* How the readers (query*.c) write a reply's JSON. */
#define STORE_ROWJSON_DUMP_FLAGS	(JSON_COMPACT | JSON_REAL_PRECISION(17))
/* Bytes of a run's config in the runs list, at most (API.md). */
#define STORE_ROWJSON_CONFIG_BRIEF	2048

/* The run or alert in the current row of st. */
json_t	*store_rowjson_run(sqlite3_stmt *st);
json_t	*store_rowjson_alert(sqlite3_stmt *st);
/*
 * The run in st's row as GET /api/v1/runs lists it: without its meta,
 * and with its config whole when that takes at most
 * STORE_ROWJSON_CONFIG_BRIEF bytes as a reply writes it; else with the
 * config's members that fit, in order (null for a config that is not an
 * object), and "config_partial": true.
 */
json_t	*store_rowjson_run_brief(sqlite3_stmt *st);
/*
 * Bind ?1 = id to the prepared st (reset), step it and return row(st)
 * of its first row, NULL when there is none; st is reset again.
 */
json_t	*store_rowjson_one(sqlite3_stmt *st, int64_t id,
	    json_t *(*row)(sqlite3_stmt *));

/*
 * A REAL column with its class column: the class wins (SQLite stores a
 * NaN as NULL); a NULL of class 0 has no number and reads as NaN, so
 * callers that care check for NULL first.
 */
double	 store_rowjson_value(sqlite3_stmt *st, int value_col, int class_col);

#endif
