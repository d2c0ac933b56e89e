/* SPDX-License-Identifier: MIT */
/*
 * receiver: where alert notices go (an Alertmanager, a webhook, a Slack
 * incoming webhook) and which ones each wants.  A receiver comes from a
 * directive's value, "URL [option=value ...]":
 *   severity=info|warning|critical   the least severity it hears of
 *                                    (default warning)
 *   project=a,b                      only runs of these projects
 *   name=NAME                        its name in /metrics and the outbox
 *                                    (default: kind, host and a hash of
 *                                    the path, which may hold a secret)
 *   bearer-file=FILE                 send 'Authorization: Bearer' with
 *                                    the first line of FILE
 * Parsed by config on the main thread during start-up; read-only after.
 */
#ifndef GW_RECEIVER_H
#define GW_RECEIVER_H

#include <stddef.h>

#include <curl/curl.h>

enum receiver_kind {
	RECEIVER_ALERTMANAGER = 0,
	RECEIVER_WEBHOOK,
	RECEIVER_SLACK,
	RECEIVER_KIND_COUNT
};

struct receiver {
	enum receiver_kind	 kind;
	char			*name;
	char			*url;		/* as given */
	char			*post_url;	/* where notices are POSTed */
	int			 min_severity;	/* enum alert_severity */
	char			**projects;	/* NULL-terminated; NULL: all */
	char			*bearer;	/* token, or NULL */
};

#define RECEIVER_NAME_MAX	64

/*
 * Parse spec into r for a receiver of kind.  0, or -1 with an allocated
 * *cause (r is then empty: receiver_cleanup is still fine).
 */
int		 receiver_parse(struct receiver *r, enum receiver_kind kind,
		    const char *spec, char **cause);
/* Free what r owns.  Fine on a zeroed or half-parsed receiver. */
void		 receiver_cleanup(struct receiver *r);
/*
 * Parse url, which must be http:// or https:// with a host: the handle
 * (curl_url_cleanup() it), or NULL with *cause.  Also remote_target's.
 */
CURLU		*receiver_url_parse(const char *url, char **cause);
/* 0 if v is a valid name= value, or -1 with *cause (remote_target too). */
int		 receiver_name_check(const char *v, char **cause);
/*
 * The first line of the file at path, trailing space cut, into *secret
 * (allocated): a token or a password named by option opt (for *cause).
 * 0, or -1 with *cause.  Also used by remote_target.
 */
int		 receiver_read_secret(const char *opt, const char *path,
		    char **secret, char **cause);
/* "alertmanager", "webhook", "slack". */
const char	*receiver_kind_name(enum receiver_kind kind);
/*
 * 1 if r hears of an alert of severity (enum alert_severity) in a run
 * of project (NULL: none) on its own merits.
 */
int		 receiver_wants(const struct receiver *r, int severity,
		    const char *project);

#endif
