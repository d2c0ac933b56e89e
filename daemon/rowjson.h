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
/* The run with id run_id in API.md's shape; NULL if absent. */
json_t	*rowjson_run(sqlite3 *db, int64_t run_id);
/* The run's firing alerts, oldest first (an array, possibly empty). */
json_t	*rowjson_firing_alerts(sqlite3 *db, int64_t run_id);
/* The alert with id alert_id in API.md's shape; NULL if absent. */
json_t	*rowjson_alert(sqlite3 *db, int64_t alert_id);

#endif
