/* SPDX-License-Identifier: MIT */
/*
 * store_rowjson: stored rows of runs and alerts as API.md's JSON
 * objects (see store_rowjson.h).  Pure; any thread.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "store_rowjson.h"
#include "wire.h"
#include "wire_json.h"

double
store_rowjson_value(sqlite3_stmt *st, int value_col, int class_col)
{
	int	class = sqlite3_column_int(st, class_col);

	if (class == WIRE_FINITE &&
	    sqlite3_column_type(st, value_col) == SQLITE_NULL)
		return NAN;
	return wire_class_value(class, sqlite3_column_double(st, value_col));
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
	return wire_json_number(sqlite3_column_double(st, col));
}

/* A REAL column with its class column, or null when it has no value. */
static json_t *
rowjson_classed(sqlite3_stmt *st, int value_col, int class_col)
{
	if (sqlite3_column_int(st, class_col) == WIRE_FINITE &&
	    sqlite3_column_type(st, value_col) == SQLITE_NULL)
		return json_null();
	return wire_json_number(store_rowjson_value(st, value_col, class_col));
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

/* A run's tags column (schema 0005) as an array: [] when NULL. */
static json_t *
rowjson_tags(sqlite3_stmt *st, int col)
{
	json_t	*j;

	j = rowjson_parsed(st, col);
	if (!json_is_array(j)) {
		json_decref(j);
		j = json_array();
	}
	return j;
}

/* The run in st's row, all but its config and meta. */
static json_t *
rowjson_run_fields(sqlite3_stmt *st)
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
	json_object_set_new(o, "tags", rowjson_tags(st, 13));
	json_object_set_new(o, "note", sqlite3_column_type(st, 14) ==
	    SQLITE_NULL ? json_string("") : rowjson_text(st, 14));
	return o;
}

json_t *
store_rowjson_run(sqlite3_stmt *st)
{
	json_t	*o;

	o = rowjson_run_fields(st);
	json_object_set_new(o, "config", rowjson_parsed(st, 10));
	json_object_set_new(o, "meta", rowjson_parsed(st, 11));
	return o;
}

/* Bytes of v as a reader's reply writes it. */
static size_t
rowjson_size(const json_t *v)
{
	return json_dumpb(v, NULL, 0, STORE_ROWJSON_DUMP_FLAGS |
	    JSON_ENCODE_ANY);
}

/*
 * The members of config (an object) that fit, in their order, in
 * STORE_ROWJSON_CONFIG_BRIEF bytes; *partial set when one did not.  A
 * value is sized only when its key fits, and once.
 */
static json_t *
rowjson_config_cut(json_t *config, int *partial)
{
	json_t		*o, *k, *v;
	const char	*key;
	size_t		 used = 2, room, need;	/* 2: the braces */

	o = json_object();
	json_object_foreach(config, key, v) {
		room = STORE_ROWJSON_CONFIG_BRIEF - used;
		if (room < 6) {		/* not even ,"k":0 */
			*partial = 1;
			break;
		}
		k = json_string(key);	/* NULL for bad UTF-8: not ours */
		need = k != NULL ? rowjson_size(k) + 1 + (used > 2) : room;
		json_decref(k);
		need = need < room ? need + rowjson_size(v) : room + 1;
		if (need <= room) {
			json_object_set(o, key, v);
			used += need;
		} else
			*partial = 1;
	}
	return o;
}

json_t *
store_rowjson_run_brief(sqlite3_stmt *st)
{
	json_t	*o, *config, *cut;
	int	 partial = 0;

	o = rowjson_run_fields(st);
	config = rowjson_parsed(st, 10);
	/* Stored text is never longer than a reply (shortest reals). */
	if ((size_t)sqlite3_column_bytes(st, 10) > STORE_ROWJSON_CONFIG_BRIEF ||
	    rowjson_size(config) > STORE_ROWJSON_CONFIG_BRIEF) {
		cut = json_is_object(config) ?
		    rowjson_config_cut(config, &partial) : json_null();
		partial |= !json_is_object(config);
		json_decref(config);
		config = cut;
	}
	json_object_set_new(o, "config", config);
	if (partial)
		json_object_set_new(o, "config_partial", json_true());
	return o;
}

json_t *
store_rowjson_alert(sqlite3_stmt *st)
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
store_rowjson_one(sqlite3_stmt *st, int64_t id, json_t *(*row)(sqlite3_stmt *))
{
	json_t	*o = NULL;

	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		o = row(st);
	sqlite3_reset(st);
	return o;
}
