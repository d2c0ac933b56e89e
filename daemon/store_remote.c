/* SPDX-License-Identifier: MIT */
/*
 * store_remote: remote_log rows written with their batch, cursors
 * written back, the log pruned; see store_remote.h.  Writer thread only.
 */
#include <stdint.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "remote_target.h"
#include "store.h"
#include "store_int.h"
#include "store_remote.h"
#include "xmalloc.h"

enum store_rid {
	RID_CURSOR,
	RID_PRUNE,
	RID_COUNT
};

static const char *const store_remote_sql[RID_COUNT] = {
	[RID_CURSOR] =
	    "INSERT INTO remote_cursors (target, sent_id, updated_at)"
	    " VALUES (?1, ?2, ?3) ON CONFLICT (target) DO UPDATE SET"
	    " sent_id = max(sent_id, excluded.sent_id),"
	    " updated_at = excluded.updated_at",
	[RID_PRUNE] = "DELETE FROM remote_log WHERE id <= ?1",
};

#define STORE_REMOTE_LOG_SQL						\
	"INSERT INTO remote_log (run_id, first_step, last_step, n, stored_at)" \
	" VALUES (?1, ?2, ?3, ?4, ?5)"

struct store_remote {
	struct store			*st;
	const struct remote_target	*t;
	size_t				 n;
	int64_t				*marked;	/* cursors written */
	int64_t				 pruned;	/* rows deleted through */
	sqlite3_stmt			*stmt[RID_COUNT];
};

struct store_remote *
store_remote_new(struct store *st, const struct remote_target *t, size_t n,
    char **cause)
{
	struct store_remote	*sr;

	sr = xcalloc(1, sizeof *sr);
	sr->st = st;
	sr->t = t;
	sr->n = n;
	sr->marked = xcalloc(n == 0 ? 1 : n, sizeof *sr->marked);
	if (store_prepare_all(st, store_remote_sql, sr->stmt, RID_COUNT,
	    cause) == -1)
		goto fail;
	if (st->remote_log == NULL && sqlite3_prepare_v3(st->db,
	    STORE_REMOTE_LOG_SQL, -1, SQLITE_PREPARE_PERSISTENT,
	    &st->remote_log, NULL) != SQLITE_OK) {
		store_err(st, cause, "prepare remote log");
		goto fail;
	}
	return sr;

fail:
	store_remote_free(sr);
	return NULL;
}

void
store_remote_free(struct store_remote *sr)
{
	int	i;

	if (sr == NULL)
		return;
	sqlite3_finalize(sr->st->remote_log);
	sr->st->remote_log = NULL;
	for (i = 0; i < RID_COUNT; i++)
		sqlite3_finalize(sr->stmt[i]);
	free(sr->marked);
	free(sr);
}

int
store_remote_log(struct store *st, int64_t run_id, int64_t first,
    int64_t last, int64_t n, double now, char **cause)
{
	sqlite3_stmt	*s = st->remote_log;

	sqlite3_bind_int64(s, 1, run_id);
	sqlite3_bind_int64(s, 2, first);
	sqlite3_bind_int64(s, 3, last);
	sqlite3_bind_int64(s, 4, n);
	sqlite3_bind_double(s, 5, now);
	return store_done(st, s, "remote log", cause);
}

int
store_remote_sync(struct store_remote *sr, const int64_t *acked, double now,
    char **cause)
{
	sqlite3_stmt	*s;
	int64_t		 least = INT64_MAX;
	size_t		 i;

	for (i = 0; i < sr->n; i++) {
		least = acked[i] < least ? acked[i] : least;
		if (acked[i] <= sr->marked[i])
			continue;
		s = sr->stmt[RID_CURSOR];
		sqlite3_bind_text(s, 1, sr->t[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, acked[i]);
		sqlite3_bind_double(s, 3, now);
		if (store_done(sr->st, s, "remote cursor", cause) == -1)
			return -1;
		sr->marked[i] = acked[i];
	}
	if (sr->n == 0 || least <= sr->pruned)
		return 0;
	s = sr->stmt[RID_PRUNE];
	sqlite3_bind_int64(s, 1, least);
	if (store_done(sr->st, s, "remote prune", cause) == -1)
		return -1;
	sr->pruned = least;
	return 0;
}
