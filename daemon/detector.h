/* SPDX-License-Identifier: MIT */
/*
 * detector: gradwatch's health rules (docs/DETECTION.md; thresholds in
 * detector_config).  Pure: points in, alert events out; no I/O, no clock
 * of its own (callers pass the time).  It keeps O(1) state per series
 * and costs O(1) per point.  A struct detector holds every run's state
 * and belongs to one thread at a time: the writer while it rebuilds it
 * after a restart (watch.c), then the detection thread (detection.c),
 * which feeds it each committed batch; the writer turns the events into
 * alert rows, the run's health and stream messages.
 *
 * An alert is identified by (run, kind, series); series is "" for
 * run-level alerts (loss, global norm, stall).  Its lifecycle is
 * fire -> (update)* -> resolve; the detector never fires a second alert
 * with the same identity while one is firing.
 */
#ifndef GW_DETECTOR_H
#define GW_DETECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "alert_kind.h"
#include "batch.h"

enum detector_event_type {
	DETECTOR_FIRE,		/* a new alert */
	DETECTOR_UPDATE,	/* a firing alert changed (severity, value, message) */
	DETECTOR_RESOLVE	/* a firing alert ended */
};

/* One event; strings are owned by the event list. */
struct detector_event {
	enum detector_event_type type;
	int64_t			 run_id;
	enum alert_kind		 kind;
	enum alert_severity	 severity;
	enum alert_severity	 prev_severity;	/* before an UPDATE; else severity */
	char			*series;	/* "" for the run */
	int64_t			 onset_step;	/* first bad evaluation; -1 unknown */
	int64_t			 fire_step;
	int64_t			 resolve_step;	/* RESOLVE only; else -1 */
	double			 value;		/* what was seen (may be non-finite) */
	double			 baseline;	/* what was expected; NaN if none */
	double			 threshold;	/* the limit crossed; NaN if none */
	char			*message;	/* for a person: what, where, since when, hint */
	char			*detail_json;	/* extra context as a JSON object, or NULL */
};

/* A growing list of events; the caller owns it. */
struct detector_events {
	struct detector_event	*ev;
	size_t			 n;
	size_t			 cap;
};

/* Empty the list, freeing the events' strings (keeps the array). */
void	detector_events_clear(struct detector_events *list);
/* Free the list's storage. */
void	detector_events_cleanup(struct detector_events *list);

/*
 * Thresholds and windows (DETECTION.md's defaults).  The config file
 * sets them as "detector.<name> value"; a run may override them in its
 * meta as {"detector": {"<name>": value, ...}}.
 */
struct detector_config;

/* The defaults.  The caller frees with detector_config_free(). */
struct detector_config	*detector_config_new(void);
void			 detector_config_free(struct detector_config *cfg);
/*
 * Set one threshold by name.  0, or -1 with an allocated *cause naming
 * the problem (unknown name, value out of range).
 */
int			 detector_config_set(struct detector_config *cfg,
			    const char *name, const char *value, char **cause);
/* Names and defaults of every threshold, one "name default  meaning" a line. */
const char		*detector_config_help(void);

/* A detector using cfg (borrowed; it must outlive the detector). */
struct detector	*detector_new(const struct detector_config *cfg);
void		 detector_free(struct detector *d);

/*
 * Feed the committed batch b of run run_id, received at now (seconds
 * since the epoch).  Appends this batch's events to out.  With replay
 * set (rebuilding state from stored history after a restart), baselines
 * and counters advance but no alert changes state and nothing is
 * appended.
 */
void	detector_feed(struct detector *d, int64_t run_id, const struct batch *b,
	    double now, int replay, struct detector_events *out);

/*
 * Restore an alert that was firing before a restart, so that the
 * detector resolves it (or keeps it) instead of firing it again.
 */
void	detector_restore(struct detector *d, int64_t run_id,
	    enum alert_kind kind, const char *series,
	    enum alert_severity severity, int64_t onset_step, int64_t fire_step);

/*
 * The time passes without data: fire or escalate stalls of runs that
 * have gone quiet for longer than their rhythm suggests.  Call about
 * once a second.
 */
void	detector_tick(struct detector *d, double now,
	    struct detector_events *out);

/* The run finished or failed: close its stall watch and forget its state. */
void	detector_forget(struct detector *d, int64_t run_id);

/*
 * detector_evict.c: the run went quiet: free its tensors' state, which
 * grows with its series, and keep the rest (a few KB: the run-level
 * baselines, alerts and rhythm, so the stall timer goes on, and the
 * firing alerts of its tensors).  Nothing if the run is unknown or
 * evicted already.
 */
void	detector_evict(struct detector *d, int64_t run_id);
/* 1 if run_id is evicted: feed it only after detector_refill(). */
int	detector_is_evicted(struct detector *d, int64_t run_id);
/*
 * Before an evicted run's next batch: rebuild its tensors by replaying
 * b, its recent history up to the last step it was fed (NULL: none,
 * they start afresh), as after a restart, and arm their kept alerts
 * again, so that no alert fires twice or is lost.  A run that is not
 * evicted is left as it is; an unknown one is replayed like a restart's.
 * Makes no event (out is scratch for the replay).
 */
void	detector_refill(struct detector *d, int64_t run_id,
	    const struct batch *b, double now, struct detector_events *out);
/* What d holds: runs whole, runs evicted, tensors. */
void	detector_counts(const struct detector *d, size_t *runs,
	    size_t *evicted, size_t *tensors);


#endif
