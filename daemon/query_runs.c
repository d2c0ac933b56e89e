/* SPDX-License-Identifier: MIT */
/*
 * query_runs: the routes that answer rows, not points: GET
 * /api/v1/runs, /api/v1/runs/{run}, /api/v1/alerts, and the database's
 * part of /metrics (run health and firing alerts as gauges).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "log.h"
#include "query_int.h"
#include "store_rowjson.h"
#include "wire.h"
#include "wire_json.h"
#include "xmalloc.h"

/* Reply {key: [row(st) for each row of st]}: API objects of its rows. */
static void
query_reply_rows(struct query *q, sqlite3_stmt *st,
    json_t *(*row)(sqlite3_stmt *), const char *key, struct query_reply *r)
{
	json_t	*list;
	int	 rc;

	list = json_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(list, row(st));
	if (rc != SQLITE_DONE)
		query_reply_internal(r, query_errmsg(q));
	else
		query_reply_json(r, json_pack("{s:O}", key, list));
	json_decref(list);
}

void
query_runs(struct query *q, const char *project, const char *status,
    const char *config, struct query_reply *r)
{
	sqlite3_stmt	*st;
	int		 whole;

	whole = !query_is_absent(config) && strcmp(config, "1") == 0;
	if (!whole && !query_is_absent(config) && strcmp(config, "0") != 0) {
		query_reply_error(r, "bad_request", "config: want 0 or 1,"
		    " not %.*s", QUERY_ECHO_MAX, config);
		return;
	}
	if (!query_is_absent(status) && strcmp(status, "running") != 0 &&
	    strcmp(status, "finished") != 0 && strcmp(status, "failed") != 0 &&
	    strcmp(status, "stalled") != 0) {
		query_reply_error(r, "bad_request", "status: want running,"
		    " finished, failed or stalled, not %.*s", QUERY_ECHO_MAX,
		    status);
		return;
	}
	if (query_begin(q, r) == -1)
		return;
	st = query_stmt(q, QS_RUNS);
	if (!query_is_absent(project))
		sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
	if (!query_is_absent(status))
		sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	query_reply_rows(q, st, whole ? store_rowjson_run :
	    store_rowjson_run_brief, "runs", r);
	query_end(q);
}

/* The series row in st (QS_SERIES_OF_RUN) as API.md's series object. */
static json_t *
query_series_json(sqlite3_stmt *st)
{
	json_t	*o, *shape;

	o = json_object();
	json_object_set_new(o, "name",
	    json_string((const char *)sqlite3_column_text(st, 0)));
	json_object_set_new(o, "kind",
	    json_string((const char *)sqlite3_column_text(st, 1)));
	json_object_set_new(o, "points", json_integer(sqlite3_column_int64(st,
	    2)));
	json_object_set_new(o, "last_step",
	    sqlite3_column_type(st, 3) == SQLITE_NULL ? json_null() :
	    json_integer(sqlite3_column_int64(st, 3)));
	if (sqlite3_column_int(st, 5) == 0 &&
	    sqlite3_column_type(st, 4) == SQLITE_NULL)
		json_object_set_new(o, "last_value", json_null());
	else
		json_object_set_new(o, "last_value",
		    wire_json_number(store_rowjson_value(st, 4, 5)));
	if (sqlite3_column_type(st, 6) != SQLITE_NULL)
		json_object_set_new(o, "numel",
		    json_integer(sqlite3_column_int64(st, 6)));
	if (sqlite3_column_type(st, 7) != SQLITE_NULL)
		json_object_set_new(o, "depth",
		    json_integer(sqlite3_column_int64(st, 7)));
	if (sqlite3_column_type(st, 8) != SQLITE_NULL) {
		shape = json_loads((const char *)sqlite3_column_text(st, 8),
		    JSON_DECODE_ANY, NULL);
		if (shape != NULL)
			json_object_set_new(o, "shape", shape);
	}
	return o;
}

void
query_run(struct query *q, const char *run, struct query_reply *r)
{
	sqlite3_stmt	*st;
	json_t		*o = NULL, *series;
	int64_t		 run_id;
	int		 rc;

	if (query_begin(q, r) == -1)
		return;
	if (query_find_run(q, run, &run_id, NULL, NULL, r) != 1)
		goto done;
	if ((o = store_rowjson_one(query_stmt(q, QS_RUN_BY_ID), run_id,
	    store_rowjson_run)) == NULL) {
		query_reply_internal(r, query_errmsg(q));
		goto done;
	}
	series = json_array();
	json_object_set_new(o, "series", series);
	st = query_stmt(q, QS_SERIES_OF_RUN);
	sqlite3_bind_int64(st, 1, run_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(series, query_series_json(st));
	if (rc != SQLITE_DONE) {
		query_reply_internal(r, sqlite3_errmsg(q->db));
		goto done;
	}
	query_reply_json(r, o);
	o = NULL;

done:
	json_decref(o);
	query_end(q);
}

/* Parse seconds since the epoch: a finite decimal number. */
static int
query_parse_time(const char *s, double *out)
{
	char	*end;

	errno = 0;
	*out = strtod(s, &end);
	if (end == s || *end != '\0' || errno == ERANGE || !isfinite(*out))
		return -1;
	return 0;
}

void
query_alerts(struct query *q, const char *run, const char *state,
    const char *since, struct query_reply *r)
{
	sqlite3_stmt	*st;
	double		 t = 0;

	if (!query_is_absent(run) && !wire_is_run_key(run)) {
		query_reply_error(r, "bad_request", "run: not a run key:"
		    " %.*s", QUERY_ECHO_MAX, run);
		return;
	}
	if (!query_is_absent(state) && strcmp(state, "firing") != 0 &&
	    strcmp(state, "resolved") != 0) {
		query_reply_error(r, "bad_request",
		    "state: want firing or resolved, not %.*s", QUERY_ECHO_MAX,
		    state);
		return;
	}
	if (!query_is_absent(since) && query_parse_time(since, &t) == -1) {
		query_reply_error(r, "bad_request", "since: want seconds"
		    " since the epoch, not %.*s", QUERY_ECHO_MAX, since);
		return;
	}
	if (query_begin(q, r) == -1)
		return;
	st = query_stmt(q, QS_ALERTS);
	if (!query_is_absent(run))
		sqlite3_bind_text(st, 1, run, -1, SQLITE_STATIC);
	if (!query_is_absent(state))
		sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	if (!query_is_absent(since))
		sqlite3_bind_double(st, 3, t);
	query_reply_rows(q, st, store_rowjson_alert, "alerts", r);
	query_end(q);
}

/* A label value with the exposition format's escapes (allocated). */
static char *
query_label(const char *v)
{
	char	*out, *p;

	p = out = xmalloc(2 * strlen(v) + 1);
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n') {
			*p++ = '\\';
			*p++ = *v == '\n' ? 'n' : *v;
		} else
			*p++ = *v;
	}
	*p = '\0';
	return out;
}

static int
query_health_level(const char *health)
{
	if (strcmp(health, "critical") == 0)
		return 2;
	return strcmp(health, "warning") == 0 ? 1 : 0;
}

void
query_gauges(struct query *q, double since, struct query_reply *r)
{
	sqlite3_stmt	*st;
	FILE		*f;
	char		*key, *project;
	size_t		 len;
	int		 rc;

	if (query_begin(q, r) == -1)
		return;
	if ((f = open_memstream(&r->body, &len)) == NULL)
		fatal("query: open_memstream");
	fprintf(f, "# HELP gradwatch_run_health Health of each run seen in "
	    "the last day and not finished: 0 ok, 1 warning, 2 critical.\n"
	    "# TYPE gradwatch_run_health gauge\n");
	st = query_stmt(q, QS_RUN_HEALTH);
	sqlite3_bind_double(st, 1, since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		key = query_label((const char *)sqlite3_column_text(st, 0));
		project = query_label(sqlite3_column_type(st, 1) ==
		    SQLITE_NULL ? "" : (const char *)sqlite3_column_text(st, 1));
		fprintf(f, "gradwatch_run_health{run=\"%s\",project=\"%s\"}"
		    " %d\n", key, project, query_health_level(
		    (const char *)sqlite3_column_text(st, 2)));
		free(key);
		free(project);
	}
	if (rc != SQLITE_DONE)
		goto fail;
	fprintf(f, "# HELP gradwatch_alerts_firing Alerts firing in those "
	    "runs, by kind and severity.\n"
	    "# TYPE gradwatch_alerts_firing gauge\n");
	st = query_stmt(q, QS_FIRING_COUNTS);
	sqlite3_bind_double(st, 1, since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		fprintf(f, "gradwatch_alerts_firing{kind=\"%s\","
		    "severity=\"%s\"} %lld\n", sqlite3_column_text(st, 0),
		    sqlite3_column_text(st, 1),
		    (long long)sqlite3_column_int64(st, 2));
	if (rc != SQLITE_DONE)
		goto fail;
	if (fclose(f) != 0)
		fatal("query: metrics text");
	r->status = 200;
	query_end(q);
	return;
fail:
	fclose(f);
	free(r->body);
	r->body = NULL;
	query_reply_internal(r, query_errmsg(q));
	query_end(q);
}
