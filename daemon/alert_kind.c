/* SPDX-License-Identifier: MIT */
/* alert_kind: kinds' and severities' API names; see alert_kind.h. */
#include <string.h>

#include "alert_kind.h"

static const char *const alert_kind_names[ALERT_KIND_COUNT] = {
	"nonfinite", "grad_explosion", "grad_spike", "vanishing",
	"loss_spike", "divergence", "clip_saturation", "clip_surge",
	"dead_layer", "no_gradient", "stall", "instability"
};

static const char *const alert_severity_names[] = {
	"info", "warning", "critical"
};

const char *
alert_kind_name(enum alert_kind kind)
{
	if ((unsigned)kind >= ALERT_KIND_COUNT)
		return "unknown";
	return alert_kind_names[kind];
}

int
alert_kind_parse(const char *name)
{
	int	i;

	for (i = 0; i < ALERT_KIND_COUNT; i++)
		if (strcmp(alert_kind_names[i], name) == 0)
			return i;
	return -1;
}

const char *
alert_severity_name(enum alert_severity sev)
{
	if ((unsigned)sev > ALERT_CRITICAL)
		return "unknown";
	return alert_severity_names[sev];
}

int
alert_severity_parse(const char *name)
{
	int	i;

	for (i = 0; i <= ALERT_CRITICAL; i++)
		if (strcmp(alert_severity_names[i], name) == 0)
			return i;
	return -1;
}
