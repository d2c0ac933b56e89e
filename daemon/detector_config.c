/* SPDX-License-Identifier: MIT */
/*
 * detector_config: the detector's thresholds by name (the table in
 * detector_config.h): defaults, the setter the config file uses, the
 * help text and a run's overrides from its meta.  Configs are built at
 * start-up by the main thread and per run by the detector's thread; a
 * config is never changed while a detector reads it, except a run's
 * own copy, by the same thread.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "detector.h"
#include "detector_int.h"
#include "xmalloc.h"

struct detector_config_entry {
	const char	*name;
	size_t		 off;
	double		 def;
	double		 lo;
	double		 hi;
	int		 integer;
};

static const struct detector_config_entry detector_config_entries[] = {
#define DETECTOR_CONFIG_ENTRY(f, n, def, lo, hi, i, h)			\
	{ n, offsetof(struct detector_config, f), def, lo, hi, i },
	DETECTOR_CONFIG_TABLE(DETECTOR_CONFIG_ENTRY)
#undef DETECTOR_CONFIG_ENTRY
};
#define DETECTOR_CONFIG_N						\
	(sizeof detector_config_entries / sizeof detector_config_entries[0])

/* "name default  meaning" lines, built by the preprocessor. */
static const char detector_config_help_text[] =
#define DETECTOR_CONFIG_HELP(f, n, def, lo, hi, i, h)			\
	"  " n " " #def "\t" h "\n"
	DETECTOR_CONFIG_TABLE(DETECTOR_CONFIG_HELP)
#undef DETECTOR_CONFIG_HELP
	;

struct detector_config *
detector_config_new(void)
{
	struct detector_config	*cfg;
	size_t			 i;

	cfg = xcalloc(1, sizeof *cfg);
	for (i = 0; i < DETECTOR_CONFIG_N; i++)
		*(double *)(void *)((char *)cfg +
		    detector_config_entries[i].off) =
		    detector_config_entries[i].def;
	return cfg;
}

void
detector_config_free(struct detector_config *cfg)
{
	free(cfg);
}

int
detector_config_set(struct detector_config *cfg, const char *name,
    const char *value, char **cause)
{
	const struct detector_config_entry	*e = NULL;
	char					*end;
	double					 v;
	size_t					 i;

	for (i = 0; i < DETECTOR_CONFIG_N; i++)
		if (strcmp(detector_config_entries[i].name, name) == 0) {
			e = &detector_config_entries[i];
			break;
		}
	if (e == NULL) {
		xasprintf(cause, "unknown detector threshold '%s'", name);
		return -1;
	}
	errno = 0;
	v = strtod(value, &end);
	while (*end == ' ' || *end == '\t')
		end++;
	if (end == value || *end != '\0' || errno != 0 || !isfinite(v)) {
		xasprintf(cause, "detector.%s: '%s' is not a number", name,
		    value);
		return -1;
	}
	if (v < e->lo || v > e->hi || (e->integer && v != floor(v))) {
		xasprintf(cause, "detector.%s: %s is out of range (%s %g to "
		    "%g)", name, value, e->integer ? "an integer" : "a number",
		    e->lo, e->hi);
		return -1;
	}
	*(double *)(void *)((char *)cfg + e->off) = v;
	return 0;
}

const char *
detector_config_help(void)
{
	return detector_config_help_text;
}

int
detector_config_apply_meta(struct detector_config *cfg,
    const char *meta_json)
{
	json_t		*meta, *det, *v;
	const char	*key;
	char		 num[64], *cause;
	const char	*s;
	int		 n = 0;

	if (meta_json == NULL)
		return 0;
	if ((meta = json_loads(meta_json, 0, NULL)) == NULL)
		return 0;
	det = json_object_get(meta, "detector");
	if (!json_is_object(det)) {
		json_decref(meta);
		return 0;
	}
	json_object_foreach(det, key, v) {
		if (json_is_number(v)) {
			snprintf(num, sizeof num, "%.17g",
			    json_number_value(v));
			s = num;
		} else if (json_is_string(v))
			s = json_string_value(v);
		else
			continue;
		cause = NULL;
		if (detector_config_set(cfg, key, s, &cause) == 0)
			n++;
		free(cause);
	}
	json_decref(meta);
	return n;
}
