/* SPDX-License-Identifier: MIT */
/*
 * store_json: the writer's JSON of its own rows (docs/API.md's run and
 * alert objects), read through the writer's connection inside or after
 * its transaction, with statements prepared once.  Writer thread only.
 */
#ifndef GW_STORE_JSON_H
#define GW_STORE_JSON_H

#include <stdint.h>

#include <jansson.h>

struct store;

/* The run with id run_id; NULL if absent. */
json_t	*store_json_run(struct store *st, int64_t run_id);
/* The alert with id alert_id; NULL if absent. */
json_t	*store_json_alert(struct store *st, int64_t alert_id);
/* The run's firing alerts, oldest first (an array, possibly empty). */
json_t	*store_json_firing_alerts(struct store *st, int64_t run_id);

#endif
