/* SPDX-License-Identifier: MIT */
/*
 * rowjson: turns rows of runs and alerts into the JSON objects of
 * API.md, and maps non-finite numbers to and from their wire strings
 * and *_class columns (schema 0001).  Stateless: each call prepares its
 * statement on the connection it is given, so any thread may call it
 * with the connection that thread owns.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "rowjson.h"

#define ROWJSON_CLASS_FINITE	0
#define ROWJSON_CLASS_NAN	1
#define ROWJSON_CLASS_PINF	2
#define ROWJSON_CLASS_NINF	3

json_t *
rowjson_number(double v)
{
	if (isnan(v))
		return json_string("NaN");
	if (isinf(v))
		return json_string(v > 0 ? "Infinity" : "-Infinity");
	return json_real(v);
}

int
rowjson_class(double v)
{
	if (isnan(v))
		return ROWJSON_CLASS_NAN;
	if (isinf(v))
		return v > 0 ? ROWJSON_CLASS_PINF : ROWJSON_CLASS_NINF;
	return ROWJSON_CLASS_FINITE;
}

/*
 * The class column wins over the REAL column, which SQLite stores as
 * NULL for a NaN.  A NULL REAL of class 0 has no number: the caller
 * checks for NULL first; NaN is returned for it.
 */
double
rowjson_column_value(sqlite3_stmt *st, int value_col, int class_col)
{
	switch (sqlite3_column_int(st, class_col)) {
	case ROWJSON_CLASS_NAN:
		return NAN;
	case ROWJSON_CLASS_PINF:
		return INFINITY;
	case ROWJSON_CLASS_NINF:
		return -INFINITY;
	default:
		break;
	}
	if (sqlite3_column_type(st, value_col) == SQLITE_NULL)
		return NAN;
	return sqlite3_column_double(st, value_col);
}

/* Column col as a JSON string, or null. */
static json_t *
rowjson_text(sqlite3_stmt *st, int col)
{
	const unsigned char	*s;
	json_t			*j;

	s = sqlite3_column_text(st, col);
	if (s == NULL)
		return json_null();
	j = json_stringn((const char *)s, (size_t)sqlite3_column_bytes(st, col));
	return j != NULL ? j : json_null();	/* not UTF-8: not ours */
}

/* Column col as a JSON integer, or null. */
static json_t *
rowjson_int(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return json_null();
	return json_integer(sqlite3_column_int64(st, col));
}

/* A REAL column without a class column as a JSON number, or null. */
static json_t *
rowjson_real(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return json_null();
	return rowjson_number(sqlite3_column_double(st, col));
}

/* A REAL column with its class column, or null when it has no value. */
static json_t *
rowjson_classed(sqlite3_stmt *st, int value_col, int class_col)
{
	if (sqlite3_column_int(st, class_col) == ROWJSON_CLASS_FINITE &&
	    sqlite3_column_type(st, value_col) == SQLITE_NULL)
		return json_null();
	return rowjson_number(rowjson_column_value(st, value_col, class_col));
}

/* A TEXT column holding JSON, parsed; null when NULL or unparsable. */
static json_t *
rowjson_parsed(sqlite3_stmt *st, int col)
{
	const char	*s;
	json_t		*j;

	s = (const char *)sqlite3_column_text(st, col);
	if (s == NULL)
		return json_null();
	j = json_loadb(s, (size_t)sqlite3_column_bytes(st, col),
	    JSON_DECODE_ANY, NULL);
	return j != NULL ? j : json_null();
}

json_t *
rowjson_run_row(sqlite3_stmt *st)
{
	json_t	*o;

	o = json_object();
	json_object_set_new(o, "run", rowjson_text(st, 0));
	json_object_set_new(o, "project", rowjson_text(st, 1));
	json_object_set_new(o, "status", rowjson_text(st, 2));
	json_object_set_new(o, "health", rowjson_text(st, 3));
	json_object_set_new(o, "first_step", rowjson_int(st, 4));
	json_object_set_new(o, "last_step", rowjson_int(st, 5));
	json_object_set_new(o, "started_at", rowjson_real(st, 6));
	json_object_set_new(o, "last_seen", rowjson_real(st, 7));
	json_object_set_new(o, "points", rowjson_int(st, 8));
	json_object_set_new(o, "dropped", rowjson_int(st, 9));
	json_object_set_new(o, "alerts_firing", rowjson_int(st, 12));
	json_object_set_new(o, "config", rowjson_parsed(st, 10));
	json_object_set_new(o, "meta", rowjson_parsed(st, 11));
	return o;
}

/* One row of a statement taking ?1; NULL when there is none. */
static json_t *
rowjson_one(sqlite3 *db, const char *sql, int64_t id,
    json_t *(*row)(sqlite3_stmt *))
{
	sqlite3_stmt	*st = NULL;
	json_t		*o = NULL;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto done;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		o = row(st);
done:
	sqlite3_finalize(st);
	return o;
}

json_t *
rowjson_run(sqlite3 *db, int64_t run_id)
{
	return rowjson_one(db, ROWJSON_RUN_SQL " WHERE id = ?1", run_id,
	    rowjson_run_row);
}

json_t *
rowjson_alert_row(sqlite3_stmt *st)
{
	json_t	*o;

	o = json_object();
	json_object_set_new(o, "id", rowjson_int(st, 0));
	json_object_set_new(o, "run", rowjson_text(st, 1));
	json_object_set_new(o, "kind", rowjson_text(st, 2));
	json_object_set_new(o, "severity", rowjson_text(st, 3));
	json_object_set_new(o, "state", rowjson_text(st, 4));
	json_object_set_new(o, "series", rowjson_text(st, 5));
	json_object_set_new(o, "onset_step", rowjson_int(st, 6));
	json_object_set_new(o, "fire_step", rowjson_int(st, 7));
	json_object_set_new(o, "resolve_step", rowjson_int(st, 8));
	json_object_set_new(o, "fired_at", rowjson_real(st, 9));
	json_object_set_new(o, "resolved_at", rowjson_real(st, 10));
	json_object_set_new(o, "value", rowjson_classed(st, 11, 12));
	json_object_set_new(o, "baseline", rowjson_real(st, 13));
	json_object_set_new(o, "threshold", rowjson_real(st, 14));
	json_object_set_new(o, "message", rowjson_text(st, 15));
	if (sqlite3_column_type(st, 16) != SQLITE_NULL) {
		json_t	*detail = rowjson_parsed(st, 16), *t;

		json_object_set_new(o, "detail", detail);
		/* A pattern (tensor-level kinds): its tensors, at the top. */
		if ((t = json_object_get(detail, "tensors")) != NULL &&
		    json_is_array(t))
			json_object_set(o, "tensors", t);
	}
	return o;
}

json_t *
rowjson_firing_alerts(sqlite3 *db, int64_t run_id)
{
	static const char	 sql[] = ROWJSON_ALERT_SQL
	    " WHERE a.run_id = ?1 AND a.state = 'firing'"
	    " ORDER BY a.fired_at, a.id";
	sqlite3_stmt		*st = NULL;
	json_t			*a;

	a = json_array();
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto done;
	sqlite3_bind_int64(st, 1, run_id);
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(a, rowjson_alert_row(st));

done:
	sqlite3_finalize(st);
	return a;
}

json_t *
rowjson_alert(sqlite3 *db, int64_t alert_id)
{
	return rowjson_one(db, ROWJSON_ALERT_SQL " WHERE a.id = ?1", alert_id,
	    rowjson_alert_row);
}
