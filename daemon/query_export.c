/* SPDX-License-Identifier: MIT */
/*
 * query_export: GET /api/v1/runs/{run}/export, streamed in constant
 * memory: one read transaction on its own connection, the run's series
 * one after another, each merged from its chunk and tail rows in step
 * order, as CSV or JSON lines.  Used by one thread at a time.
 */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "query_int.h"
#include "wire.h"
#include "xmalloc.h"

enum export_format { EXPORT_CSV, EXPORT_JSONL };
enum export_state { EXPORT_HEADER, EXPORT_POINTS, EXPORT_DONE, EXPORT_FAILED };

struct query_export {
	sqlite3			*db;
	sqlite3_stmt		*series;	/* the run's series by id */
	sqlite3_stmt		*chunks;	/* a series' chunks by first step */
	enum export_format	 format;
	enum export_state	 state;
	int			 pending;	/* chunks has a row not yet loaded */
	int64_t			 pending_first;
	char			*prefix;	/* the line up to the step */
	size_t			 prefixlen;
	struct chunk		*act;		/* decoded chunks being merged */
	size_t			 nact;
	size_t			 capact;
	char			*line;		/* carry: line[off..len) unsent */
	size_t			 linelen;
	size_t			 lineoff;
	size_t			 linecap;
};

static void
export_line_reserve(struct query_export *x, size_t more)
{
	if (x->linelen + more <= x->linecap)
		return;
	while (x->linelen + more > x->linecap)
		x->linecap = x->linecap == 0 ? 256 : x->linecap * 2;
	x->line = xreallocarray(x->line, x->linecap, 1);
}

static void
export_line_add(struct query_export *x, const char *s, size_t len)
{
	export_line_reserve(x, len);
	memcpy(x->line + x->linelen, s, len);
	x->linelen += len;
}

/* Append name to the line, quoted per RFC 4180 when it needs it. */
static void
export_add_csv_field(struct query_export *x, const char *name)
{
	const char	*p;

	if (strpbrk(name, ",\"\r\n") == NULL) {
		export_line_add(x, name, strlen(name));
		return;
	}
	export_line_add(x, "\"", 1);
	for (p = name; *p != '\0'; p++) {
		if (*p == '"')
			export_line_add(x, "\"", 1);
		export_line_add(x, p, 1);
	}
	export_line_add(x, "\"", 1);
}

/* Append name to the line as a JSON string (it is UTF-8 already). */
static void
export_add_json_string(struct query_export *x, const char *name)
{
	const unsigned char	*p;
	char			 esc[8];

	export_line_add(x, "\"", 1);
	for (p = (const unsigned char *)name; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			export_line_add(x, esc, 2);
		} else if (*p < 0x20) {
			snprintf(esc, sizeof esc, "\\u%04x", *p);
			export_line_add(x, esc, 6);
		} else
			export_line_add(x, (const char *)p, 1);
	}
	export_line_add(x, "\"", 1);
}

/* Build the per-series line prefix, in the line buffer, then keep it. */
static void
export_set_prefix(struct query_export *x, const char *name, const char *kind)
{
	x->linelen = x->lineoff = 0;
	if (x->format == EXPORT_CSV) {
		export_add_csv_field(x, name);
		export_line_add(x, ",", 1);
		export_add_csv_field(x, kind);
		export_line_add(x, ",", 1);
	} else {
		export_line_add(x, "{\"series\":", 10);
		export_add_json_string(x, name);
		export_line_add(x, ",\"kind\":", 8);
		export_add_json_string(x, kind);
		export_line_add(x, ",\"step\":", 8);
	}
	free(x->prefix);
	x->prefix = xstrndup(x->line, x->linelen);
	x->prefixlen = x->linelen;
	x->linelen = 0;
}

/* Format one point as the whole line buffer. */
static void
export_format_point(struct query_export *x, int64_t step, double v)
{
	char		 tail[64];
	const char	*num;
	char		 val[32];
	int		 n;

	/*
	 * %.17g reads back exactly, but writes a negative zero "-0", which
	 * a JSON reader takes for the integer 0: keep it a float.
	 */
	if ((num = wire_nonfinite_str(v)) == NULL) {
		if (v == 0 && signbit(v))
			num = "-0.0";
		else {
			snprintf(val, sizeof val, "%.17g", v);
			num = val;
		}
	}
	if (x->format == EXPORT_CSV)
		n = snprintf(tail, sizeof tail, "%" PRId64 ",%s\n", step, num);
	else if (isfinite(v))
		n = snprintf(tail, sizeof tail, "%" PRId64 ",\"value\":%s}\n",
		    step, num);
	else
		n = snprintf(tail, sizeof tail,
		    "%" PRId64 ",\"value\":\"%s\"}\n", step, num);
	x->linelen = x->lineoff = 0;
	export_line_add(x, x->prefix, x->prefixlen);
	export_line_add(x, tail, (size_t)n);
}

/* Decode the pending chunk row into a new active chunk, then step on. */
static int
export_load_pending(struct query_export *x)
{
	char		*cause = NULL;
	int		 rc;

	if (x->nact == x->capact) {
		x->capact = x->capact == 0 ? 4 : x->capact * 2;
		x->act = xreallocarray(x->act, x->capact, sizeof *x->act);
		memset(x->act + x->nact, 0,
		    (x->capact - x->nact) * sizeof *x->act);
	}
	if (chunk_copy(x->chunks, &x->act[x->nact], &cause) == -1) {
		log_warnx("query: export: %s", cause);
		free(cause);
		return -1;
	}
	x->nact++;
	rc = sqlite3_step(x->chunks);
	if (rc == SQLITE_ROW) {
		x->pending = 1;
		x->pending_first = sqlite3_column_int64(x->chunks, CC_FIRST);
	} else if (rc == SQLITE_DONE)
		x->pending = 0;
	else {
		log_warnx("query: export: %s", sqlite3_errmsg(x->db));
		return -1;
	}
	return 0;
}

/* Move to the run's next series: 1, 0 when there is none, -1 on error. */
static int
export_next_series(struct query_export *x)
{
	int	rc;

	rc = sqlite3_step(x->series);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		goto fail;
	export_set_prefix(x, (const char *)sqlite3_column_text(x->series, 1),
	    (const char *)sqlite3_column_text(x->series, 2));
	sqlite3_reset(x->chunks);
	sqlite3_bind_int64(x->chunks, 1, sqlite3_column_int64(x->series, 0));
	rc = sqlite3_step(x->chunks);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	x->pending = rc == SQLITE_ROW;
	if (x->pending)
		x->pending_first = sqlite3_column_int64(x->chunks, CC_FIRST);
	return 1;

fail:
	log_warnx("query: export: %s", sqlite3_errmsg(x->db));
	return -1;
}

/*
 * The next point of the run, series by series in step order, merging
 * the series' chunks whose ranges overlap: 1, 0 at the end, -1.
 * Chunks come by first step, so an active point below the pending
 * chunk's first step is below every point not loaded yet.
 */
static int
export_next_point(struct query_export *x, int64_t *step, double *v)
{
	struct chunk	*c, tmp;
	size_t		 i, k;
	int		 rc;

	for (;;) {
		if (x->nact == 0) {
			if (x->pending) {
				if (export_load_pending(x) == -1)
					return -1;
				continue;
			}
			if ((rc = export_next_series(x)) != 1)
				return rc;
			continue;
		}
		k = 0;
		for (i = 1; i < x->nact; i++)
			if (x->act[i].steps[x->act[i].pos] <
			    x->act[k].steps[x->act[k].pos])
				k = i;
		c = &x->act[k];
		if (x->pending && x->pending_first <= c->steps[c->pos]) {
			if (export_load_pending(x) == -1)
				return -1;
			continue;
		}
		*step = c->steps[c->pos];
		*v = c->vals[c->pos];
		if (++c->pos == c->n) {
			/* Swap out, keeping its buffers for reuse. */
			x->nact--;
			tmp = x->act[k];
			x->act[k] = x->act[x->nact];
			x->act[x->nact] = tmp;
		}
		return 1;
	}
}

void
query_export_close(struct query_export *x)
{
	size_t	i;

	if (x == NULL)
		return;
	sqlite3_finalize(x->series);
	sqlite3_finalize(x->chunks);
	if (x->db != NULL && sqlite3_get_autocommit(x->db) == 0)
		sqlite3_exec(x->db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(x->db);
	for (i = 0; i < x->capact; i++)
		chunk_cleanup(&x->act[i]);
	free(x->act);
	free(x->prefix);
	free(x->line);
	free(x);
}

struct query_export *
query_export_open(const char *path, const char *run, const char *format,
    struct query_reply *r)
{
	struct query_export	*x;
	sqlite3_stmt		*st = NULL;
	int			 rc;

	x = xcalloc(1, sizeof *x);
	if (query_is_absent(format) || strcmp(format, "csv") == 0)
		x->format = EXPORT_CSV;
	else if (strcmp(format, "jsonl") == 0)
		x->format = EXPORT_JSONL;
	else {
		query_reply_error(r, "bad_request",
		    "format: want csv or jsonl, not %.*s", QUERY_ECHO_MAX,
		    format);
		goto fail;
	}
	if (run == NULL || !wire_is_run_key(run)) {
		query_reply_error(r, "bad_request", "not a run key: %.*s",
		    QUERY_ECHO_MAX, run != NULL ? run : "");
		goto fail;
	}
	rc = sqlite3_open_v2(path, &x->db,
	    SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		query_reply_internal(r, x->db != NULL ? sqlite3_errmsg(x->db) :
		    sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(x->db, QUERY_BUSY_MS);
	query_tune(x->db);
	if (sqlite3_exec(x->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "SELECT id FROM runs WHERE key = ?1",
	    -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "SELECT id, name, kind FROM series"
	    " WHERE run_id = ?1 ORDER BY id", -1, &x->series, NULL) !=
	    SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, QUERY_CHUNK_COLS
	    " WHERE series_id = ?1 UNION ALL " QUERY_ROW_COLS " FROM tails"
	    " WHERE series_id = ?1 ORDER BY 1", -1, &x->chunks,
	    NULL) != SQLITE_OK) {
		query_reply_internal(r, sqlite3_errmsg(x->db));
		goto fail;
	}
	/* The first read fixes the snapshot the whole export sees. */
	sqlite3_bind_text(st, 1, run, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		query_reply_error(r, "not_found", "no run %s", run);
		goto fail;
	}
	if (rc != SQLITE_ROW) {
		query_reply_internal(r, sqlite3_errmsg(x->db));
		goto fail;
	}
	sqlite3_bind_int64(x->series, 1, sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
	x->state = EXPORT_HEADER;
	r->status = 200;
	r->body = NULL;
	return x;

fail:
	sqlite3_finalize(st);
	query_export_close(x);
	return NULL;
}

const char *
query_export_content_type(struct query_export *x)
{
	return x->format == EXPORT_CSV ? "text/csv; charset=utf-8" :
	    "application/x-ndjson";
}

/*
 * Whole lines while they fit; a line is split only when it alone is
 * longer than what is left of an empty buf.
 */
ssize_t
query_export_read(struct query_export *x, char *buf, size_t max)
{
	size_t	out = 0, len;
	int64_t	step;
	double	v;
	int	rc;

	if (x->state == EXPORT_FAILED)
		return -1;
	if (max > SSIZE_MAX)
		max = SSIZE_MAX;
	while (out < max) {
		if (x->lineoff < x->linelen) {
			len = x->linelen - x->lineoff;
			if (len > max - out) {
				if (out > 0)
					break;	/* whole lines first */
				len = max - out;
			}
			memcpy(buf + out, x->line + x->lineoff, len);
			x->lineoff += len;
			out += len;
			continue;
		}
		if (x->state == EXPORT_DONE)
			break;
		if (x->state == EXPORT_HEADER) {
			x->linelen = x->lineoff = 0;
			if (x->format == EXPORT_CSV)
				export_line_add(x, "series,kind,step,value\n",
				    23);
			x->state = EXPORT_POINTS;
			continue;
		}
		rc = export_next_point(x, &step, &v);
		if (rc == 0) {
			x->state = EXPORT_DONE;
			continue;
		}
		if (rc == -1) {
			x->state = EXPORT_FAILED;
			return out > 0 ? (ssize_t)out : -1;
		}
		export_format_point(x, step, v);
	}
	return (ssize_t)out;
}
