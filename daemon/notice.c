/* SPDX-License-Identifier: MIT */
/*
 * notice: builds the webhook notice of an alert change and reads it
 * into Slack's and Alertmanager's formats; see notice.h.  Pure.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "log.h"
#include "notice.h"
#include "xmalloc.h"

#define NOTICE_VERSION		1
#define NOTICE_LINK_PAD_MIN	20	/* steps shown around an alert */

static const char *const notice_change_names[] = {
	"fired", "severity", "resolved"
};

void
notice_rfc3339(double t, char buf[32])
{
	struct tm	tm;
	double		ticks = round(t * 1000);	/* milliseconds */
	time_t		s = (time_t)floor(ticks / 1000);
	int		ms = (int)(ticks - (double)s * 1000);

	if (gmtime_r(&s, &tm) == NULL || tm.tm_year < -1900 ||
	    tm.tm_year > 9999 - 1900) {
		snprintf(buf, 32, "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(buf, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
	    tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
	    tm.tm_sec % 100, ms % 1000);
}

/* Integer member key of o, or dflt when absent or null. */
static json_int_t
notice_int(const json_t *o, const char *key, json_int_t dflt)
{
	json_t	*v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/* String member key of o, or NULL. */
static const char *
notice_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

char *
notice_dashboard_url(const char *external_url, const json_t *alert)
{
	json_int_t	 fire, onset, end, pad, from;
	const char	*run = notice_str(alert, "run");
	size_t		 n = strlen(external_url);
	char		*url;

	while (n > 0 && external_url[n - 1] == '/')
		n--;
	fire = notice_int(alert, "fire_step", 0);
	onset = notice_int(alert, "onset_step", fire);
	end = notice_int(alert, "resolve_step", fire);
	if (onset > fire)
		onset = fire;
	if (end < fire)
		end = fire;
	pad = (end - onset) / 2;
	if (pad < NOTICE_LINK_PAD_MIN)
		pad = NOTICE_LINK_PAD_MIN;
	from = onset > pad ? onset - pad : 0;
	/* Run keys are [A-Za-z0-9._:-]: nothing to escape in a fragment. */
	xasprintf(&url, "%.*s/#/run/%s?from=%lld&to=%lld", (int)n,
	    external_url, run != NULL ? run : "", (long long)from,
	    (long long)(end + pad));
	return url;
}

json_t *
notice_new(const struct notice_head *h, json_t *alert, json_t *run)
{
	json_t	*o;
	char	*id, *link;

	xasprintf(&id, "%s-%lld", h->instance, (long long)h->alert_id);
	link = notice_dashboard_url(h->external_url, alert);
	json_object_del(run, "meta");	/* layers and all: too much to send */
	o = json_pack("{s:i, s:s, s:I, s:s, s:s, s:f, s:o, s:o, s:s}",
	    "version", NOTICE_VERSION,
	    "id", id,
	    "seq", (json_int_t)h->seq,
	    "status", h->change == NOTICE_RESOLVED ? "resolved" : "firing",
	    "change", notice_change_names[h->change],
	    "time", h->time,
	    "alert", alert,
	    "run", run,
	    "dashboard", link);
	if (o == NULL)
		fatalx("notice: json_pack failed");
	if (h->change == NOTICE_SEVERITY && h->prev_severity != NULL)
		json_object_set_new(o, "previous_severity",
		    json_string(h->prev_severity));
	free(id);
	free(link);
	return o;
}

/* Append s to *buf with Slack's three escapes. */
static void
notice_slack_escape(char **buf, const char *s)
{
	size_t	 n = strlen(*buf), cap = n + 6 * strlen(s) + 1;
	char	*p;

	*buf = xreallocarray(*buf, 1, cap);
	p = *buf + n;
	for (; *s != '\0'; s++) {
		if (*s == '&')
			p = stpcpy(p, "&amp;");
		else if (*s == '<')
			p = stpcpy(p, "&lt;");
		else if (*s == '>')
			p = stpcpy(p, "&gt;");
		else
			*p++ = *s;
	}
	*p = '\0';
}

/* Append the formatted text, as is, to *buf. */
static void __attribute__((format(printf, 2, 3)))
notice_append(char **buf, const char *fmt, ...)
{
	va_list	 ap;
	size_t	 n = strlen(*buf);
	int	 k;

	va_start(ap, fmt);
	k = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (k < 0)
		fatalx("notice: vsnprintf failed");
	*buf = xreallocarray(*buf, 1, n + (size_t)k + 1);
	va_start(ap, fmt);
	vsnprintf(*buf + n, (size_t)k + 1, fmt, ap);
	va_end(ap);
}

char *
notice_slack(const json_t *notice)
{
	const json_t	*alert = json_object_get(notice, "alert");
	const json_t	*run = json_object_get(notice, "run");
	const char	*status = notice_str(notice, "status");
	const char	*sev = notice_str(alert, "severity");
	const char	*series = notice_str(alert, "series");
	const char	*project = notice_str(run, "project");
	const char	*message = notice_str(alert, "message");
	const char	*link = notice_str(notice, "dashboard");
	const char	*prev = notice_str(notice, "previous_severity");
	int		 resolved = status != NULL &&
			    strcmp(status, "resolved") == 0;
	char		*text = xstrdup(""), *out;
	char		 upper[16];
	size_t		 i;
	json_t		*o;

	for (i = 0; sev != NULL && sev[i] != '\0' && i < sizeof upper - 1; i++)
		upper[i] = (char)(sev[i] >= 'a' && sev[i] <= 'z' ?
		    sev[i] - 'a' + 'A' : sev[i]);
	upper[i] = '\0';
	notice_append(&text, "%s *%s* `", resolved ? ":white_check_mark:" :
	    strcmp(upper, "CRITICAL") == 0 ? ":rotating_light:" : ":warning:",
	    resolved ? "RESOLVED" : upper);
	notice_slack_escape(&text, notice_str(alert, "kind") != NULL ?
	    notice_str(alert, "kind") : "?");
	notice_append(&text, "` in run *");
	notice_slack_escape(&text, notice_str(alert, "run") != NULL ?
	    notice_str(alert, "run") : "?");
	notice_append(&text, "*");
	if (project != NULL) {
		notice_append(&text, " (project ");
		notice_slack_escape(&text, project);
		notice_append(&text, ")");
	}
	if (series != NULL) {
		notice_append(&text, ", layer `");
		notice_slack_escape(&text, series);
		notice_append(&text, "`");
	}
	if (prev != NULL && !resolved)
		notice_append(&text, " (was %s)", prev);
	notice_append(&text, "\n");
	notice_slack_escape(&text, message != NULL ? message : "");
	if (resolved)
		notice_append(&text, "\nResolved at step %lld (%s since step "
		    "%lld)", (long long)notice_int(alert, "resolve_step", -1),
		    sev != NULL ? sev : "?",
		    (long long)notice_int(alert, "fire_step", -1));
	else
		notice_append(&text, "\nOnset at step %lld, fired at step %lld",
		    (long long)notice_int(alert, "onset_step",
		    notice_int(alert, "fire_step", -1)),
		    (long long)notice_int(alert, "fire_step", -1));
	if (link != NULL)
		notice_append(&text, " · <%s|open the run>", link);
	o = json_pack("{s:s, s:[{s:s, s:{s:s, s:s}}]}", "text", text,
	    "blocks", "type", "section", "text", "type", "mrkdwn", "text", text);
	if (o == NULL)
		fatalx("notice: json_pack failed");
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	free(text);
	if (out == NULL)
		fatalx("notice: json_dumps failed");
	return out;
}

/* A number of the alert as text for a description ("NaN" stays). */
static void
notice_number(const json_t *v, char buf[32])
{
	if (json_is_number(v))
		snprintf(buf, 32, "%.6g", json_number_value(v));
	else if (json_is_string(v))
		snprintf(buf, 32, "%s", json_string_value(v));
	else
		snprintf(buf, 32, "none");
}

/* Alertmanager's labels of the alert, with severity sev. */
static json_t *
notice_am_labels(const json_t *alert, const json_t *run, const char *sev)
{
	json_t		*l;
	char		*name;
	const char	*s;

	xasprintf(&name, "gradwatch_%s", notice_str(alert, "kind") != NULL ?
	    notice_str(alert, "kind") : "unknown");
	l = json_pack("{s:s, s:s, s:s, s:s}", "alertname", name,
	    "run", notice_str(alert, "run") != NULL ?
	    notice_str(alert, "run") : "",
	    "kind", notice_str(alert, "kind") != NULL ?
	    notice_str(alert, "kind") : "",
	    "severity", sev != NULL ? sev : "");
	free(name);
	if (l == NULL)
		fatalx("notice: json_pack failed");
	/* Alertmanager drops empty labels; absent ones are left out here. */
	if ((s = notice_str(run, "project")) != NULL && *s != '\0')
		json_object_set_new(l, "project", json_string(s));
	if ((s = notice_str(alert, "series")) != NULL && *s != '\0')
		json_object_set_new(l, "series", json_string(s));
	return l;
}

static json_t *
notice_am_annotations(const json_t *notice, const json_t *alert,
    const json_t *run)
{
	const char	*series = notice_str(alert, "series");
	const char	*project = notice_str(run, "project");
	char		 value[32], base[32], limit[32], *desc;
	json_t		*a;

	notice_number(json_object_get(alert, "value"), value);
	notice_number(json_object_get(alert, "baseline"), base);
	notice_number(json_object_get(alert, "threshold"), limit);
	xasprintf(&desc, "Run %s%s%s%s: %s%s%s since step %lld, fired at step "
	    "%lld. Value %s, baseline %s, threshold %s.",
	    notice_str(alert, "run") != NULL ? notice_str(alert, "run") : "?",
	    project != NULL ? " (project " : "",
	    project != NULL ? project : "", project != NULL ? ")" : "",
	    notice_str(alert, "kind") != NULL ? notice_str(alert, "kind") : "?",
	    series != NULL ? " on " : "", series != NULL ? series : "",
	    (long long)notice_int(alert, "onset_step",
	    notice_int(alert, "fire_step", -1)),
	    (long long)notice_int(alert, "fire_step", -1), value, base, limit);
	a = json_pack("{s:s, s:s, s:s}",
	    "summary", notice_str(alert, "message") != NULL ?
	    notice_str(alert, "message") : "",
	    "description", desc,
	    "dashboard", notice_str(notice, "dashboard") != NULL ?
	    notice_str(notice, "dashboard") : "");
	free(desc);
	if (a == NULL)
		fatalx("notice: json_pack failed");
	return a;
}

static void
notice_am_append(json_t *arr, const json_t *notice, const char *sev,
    double starts, double ends)
{
	const json_t	*alert = json_object_get(notice, "alert");
	const json_t	*run = json_object_get(notice, "run");
	const char	*link = notice_str(notice, "dashboard");
	char		 s[32], e[32];
	json_t		*o;

	notice_rfc3339(starts, s);
	notice_rfc3339(ends, e);
	o = json_pack("{s:o, s:o, s:s, s:s, s:s}",
	    "labels", notice_am_labels(alert, run, sev),
	    "annotations", notice_am_annotations(notice, alert, run),
	    "startsAt", s, "endsAt", e,
	    "generatorURL", link != NULL ? link : "");
	if (o == NULL)
		fatalx("notice: json_pack failed");
	json_array_append_new(arr, o);
}

void
notice_alertmanager(json_t *arr, const json_t *notice, double now,
    double hold)
{
	const json_t	*alert = json_object_get(notice, "alert");
	const char	*status = notice_str(notice, "status");
	const char	*prev = notice_str(notice, "previous_severity");
	json_t		*v;
	double		 fired, ended, changed;

	v = json_object_get(alert, "fired_at");
	fired = json_is_number(v) ? json_number_value(v) : now;
	v = json_object_get(notice, "time");
	changed = json_is_number(v) ? json_number_value(v) : now;
	if (status != NULL && strcmp(status, "resolved") == 0) {
		v = json_object_get(alert, "resolved_at");
		ended = json_is_number(v) ? json_number_value(v) : changed;
		notice_am_append(arr, notice, notice_str(alert, "severity"),
		    fired, ended);
		return;
	}
	if (prev != NULL && strcmp(prev, notice_str(alert, "severity") != NULL ?
	    notice_str(alert, "severity") : "") != 0)
		notice_am_append(arr, notice, prev, fired, changed);
	notice_am_append(arr, notice, notice_str(alert, "severity"), fired,
	    now + hold);
}
