/* SPDX-License-Identifier: MIT */
/*
 * store_backfill: block summaries (chunk.h) for the chunks written
 * before they existed (schema 0006 and 0007) or before extremes
 * (schema 0008).  Such a chunk is read correctly without them, only by
 * decoding its points.  store_backfill_step() takes the next chunk rows
 * by id after a cursor kept in settings ('blocks_backfilled_through'),
 * and puts the chunk_blocks row of each that lacks one (or, for a
 * series drawn as a line, lacks extremes) and is dense enough to have
 * one; the writer calls it when it has nothing else to do.  Chunks
 * written since have their rows, so the work ends at the largest id it
 * finds.  A chunk whose blob does not decode is left as it is: the
 * query that meets it reports it.  Writer thread only.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "batch.h"
#include "chunk.h"
#include "log.h"
#include "store.h"
#include "store_int.h"
#include "xmalloc.h"

#define BACKFILL_KEY	"blocks_backfilled_through"

const char *const store_backfill_sql[BID_COUNT] = {
	[BID_CURSOR] = "SELECT value FROM settings WHERE name = '"
	    BACKFILL_KEY "'",
	[BID_CURSOR_PUT] = "INSERT INTO settings (name, value) VALUES ('"
	    BACKFILL_KEY "', ?1) ON CONFLICT (name) DO UPDATE SET"
	    " value = excluded.value",
	/*
	 * The next chunks: their series' kind, whether they have no
	 * summaries, and whether those lack extremes (the flags byte's
	 * 0x02, chunk.h).
	 */
	[BID_CHUNKS] =
	    "SELECT c.id, s.kind, b.blocks IS NULL,"
	    " hex(substr(b.blocks, 2, 1)) IN ('00', '01')"
	    " FROM chunks c JOIN series s ON s.id = c.series_id"
	    " LEFT JOIN chunk_blocks b ON b.chunk_id = c.id"
	    " WHERE c.id > ?1 ORDER BY c.id LIMIT ?2",
	[BID_DATA] = "SELECT data FROM chunks WHERE id = ?1",
};

/* Chunks a step looks at, and those of them that need summaries. */
struct backfill_todo {
	int64_t	id;
	int	kind;
};

/* The cursor: the largest chunk id looked at (0: none yet). */
static int
backfill_cursor(struct store *st, int64_t *through, char **cause)
{
	sqlite3_stmt	*s = st->backfill[BID_CURSOR];
	int		 rc;

	*through = 0;
	if ((rc = sqlite3_step(s)) == SQLITE_ROW)
		*through = strtoll((const char *)sqlite3_column_text(s, 0),
		    NULL, 10);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_err(st, cause, "read the backfill's cursor");
		return -1;
	}
	return 0;
}

/*
 * Put the summaries of chunk id, of a series of kind, unless it has
 * none (sparse, or a blob that does not decode: the queries report
 * it).  0, or -1 with *cause.
 */
static int
backfill_one(struct store *st, int64_t id, int kind, char **cause)
{
	struct chunk_info	 info;
	struct store_buf	*pts = &st->old;	/* scratch between batches */
	sqlite3_stmt		*s = st->backfill[BID_DATA];
	const void		*blob;
	size_t			 n;
	int			 len, rc;

	sqlite3_bind_int64(s, 1, id);
	if ((rc = sqlite3_step(s)) != SQLITE_ROW) {
		sqlite3_reset(s);
		if (rc == SQLITE_DONE)
			return 0;
		store_err(st, cause, "read a chunk to backfill");
		return -1;
	}
	blob = sqlite3_column_blob(s, 0);
	len = sqlite3_column_bytes(s, 0);
	rc = 0;
	st->blocks.len = 0;
	if (blob != NULL && chunk_info(blob, (size_t)len, &info, NULL) == 0) {
		store_buf_reserve(pts, info.n);
		if (chunk_decode(blob, (size_t)len, pts->steps, pts->vals,
		    info.n, &n, NULL) == 0 && chunk_blocks_encode(&st->blocks,
		    pts->steps, pts->vals, n, store_kind_extremes(kind)) > 0)
			rc = store_blocks_write(st, id, pts->steps[n - 1], 0,
			    cause);
	}
	sqlite3_reset(s);
	return rc;
}

/* The next max chunks after through into todo (those that need work). */
static int
backfill_next(struct store *st, int64_t through, size_t max,
    struct backfill_todo *todo, size_t *ntodo, int64_t *last, size_t *seen,
    char **cause)
{
	sqlite3_stmt	*s = st->backfill[BID_CHUNKS];
	int		 rc, kind;

	*ntodo = *seen = 0;
	sqlite3_bind_int64(s, 1, through);
	sqlite3_bind_int64(s, 2, (int64_t)max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		(*seen)++;
		*last = sqlite3_column_int64(s, 0);
		kind = series_kind_parse((const char *)sqlite3_column_text(s,
		    1));
		if (sqlite3_column_int(s, 2) ||
		    (store_kind_extremes(kind) && sqlite3_column_int(s, 3))) {
			todo[*ntodo].id = *last;
			todo[(*ntodo)++].kind = kind;
		}
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_err(st, cause, "read chunks to backfill");
		return -1;
	}
	return 0;
}

int
store_backfill_step(struct store *st, size_t max, int *done, char **cause)
{
	struct backfill_todo	*todo;
	sqlite3_stmt		*s;
	int64_t			 through, last = 0;
	size_t			 ntodo, seen, i;
	char			 num[32];

	*done = 0;
	if (st->backfill[0] == NULL && store_prepare_all(st,
	    store_backfill_sql, st->backfill, BID_COUNT, cause) == -1)
		return -1;
	todo = xreallocarray(NULL, max, sizeof *todo);
	if (store_done(st, st->stmt[SID_BEGIN], "begin", cause) == -1)
		goto out;
	/* Every row is read before one is put (store_chunks_read). */
	if (backfill_cursor(st, &through, cause) == -1 ||
	    backfill_next(st, through, max, todo, &ntodo, &last, &seen,
	    cause) == -1)
		goto fail;
	for (i = 0; i < ntodo; i++)
		if (backfill_one(st, todo[i].id, todo[i].kind, cause) == -1)
			goto fail;
	if (seen > 0) {
		snprintf(num, sizeof num, "%" PRId64, last);
		s = st->backfill[BID_CURSOR_PUT];
		sqlite3_bind_text(s, 1, num, -1, SQLITE_TRANSIENT);
		if (store_done(st, s, "write the backfill's cursor", cause) ==
		    -1)
			goto fail;
	}
	if (store_done(st, st->stmt[SID_COMMIT], "commit", cause) == -1)
		goto fail;
	*done = seen < max;
	free(todo);
	return 0;

fail:
	if (!sqlite3_get_autocommit(st->db))
		store_done_quiet(st, st->stmt[SID_ROLLBACK]);
out:
	free(todo);
	return -1;
}
