/* SPDX-License-Identifier: MIT */
/*
 * alert_kind: the kinds and severities of alerts, and their names in the
 * API (docs/API.md): "nonfinite", ..., "info", "warning", "critical".
 * Pure constant tables; any thread.
 */
#ifndef GW_ALERT_KIND_H
#define GW_ALERT_KIND_H

enum alert_kind {
	ALERT_NONFINITE = 0,
	ALERT_GRAD_EXPLOSION,
	ALERT_GRAD_SPIKE,
	ALERT_VANISHING,
	ALERT_LOSS_SPIKE,
	ALERT_DIVERGENCE,
	ALERT_CLIP_SATURATION,
	ALERT_CLIP_SURGE,
	ALERT_DEAD_LAYER,
	ALERT_NO_GRADIENT,
	ALERT_STALL,
	ALERT_INSTABILITY,	/* an addition to API.md's kinds */
	ALERT_KIND_COUNT
};

enum alert_severity {
	ALERT_INFO = 0,
	ALERT_WARNING,
	ALERT_CRITICAL
};

/* API.md's name of a kind ("nonfinite", ...) and of a severity. */
const char	*alert_kind_name(enum alert_kind kind);
int		 alert_kind_parse(const char *name);	/* -1 if unknown */
const char	*alert_severity_name(enum alert_severity sev);
int		 alert_severity_parse(const char *name);	/* -1 if unknown */

#endif
