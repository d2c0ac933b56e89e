/* SPDX-License-Identifier: MIT */
/* store_json: the writer's run and alert JSON; see store_json.h. */
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "store_rowjson.h"
#include "store_int.h"
#include "store_json.h"

const char *const store_json_sql[JID_COUNT] = {
	[JID_RUN] = STORE_ROWJSON_RUN_SQL " WHERE id = ?1",
	[JID_ALERT] = STORE_ROWJSON_ALERT_SQL " WHERE a.id = ?1",
	[JID_FIRING] = STORE_ROWJSON_ALERT_SQL
	    " WHERE a.run_id = ?1 AND a.state = 'firing'"
	    " ORDER BY a.fired_at, a.id",
};

json_t *
store_json_run(struct store *st, int64_t run_id)
{
	return store_rowjson_one(st->json[JID_RUN], run_id, store_rowjson_run);
}

json_t *
store_json_alert(struct store *st, int64_t alert_id)
{
	return store_rowjson_one(st->json[JID_ALERT], alert_id,
	    store_rowjson_alert);
}

json_t *
store_json_firing_alerts(struct store *st, int64_t run_id)
{
	sqlite3_stmt	*s = st->json[JID_FIRING];
	json_t		*a;

	a = json_array();
	sqlite3_bind_int64(s, 1, run_id);
	while (sqlite3_step(s) == SQLITE_ROW)
		json_array_append_new(a, store_rowjson_alert(s));
	sqlite3_reset(s);
	return a;
}
