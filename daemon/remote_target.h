/* SPDX-License-Identifier: MIT */
/*
 * remote_target: where stored points are sent over Prometheus
 * remote-write (remote.h), from a directive's value "URL [option=value
 * ...]", in receiver.h's style:
 *   name=NAME              its name in /metrics and its cursor's row
 *                          (default: host:port)
 *   bearer-file=FILE       'Authorization: Bearer' with FILE's first line
 *   user=NAME              basic authentication, with
 *   password-file=FILE     FILE's first line as the password
 *   header=Name:value      an extra header, e.g. X-Scope-OrgID:team-a
 *                          (repeatable)
 *   layer-every=N          the layer_* series only at steps that are a
 *                          multiple of N (default 1: every step)
 * Parsed by config on the main thread during start-up; read-only after.
 */
#ifndef GW_REMOTE_TARGET_H
#define GW_REMOTE_TARGET_H

#include <stddef.h>
#include <stdint.h>

#define REMOTE_TARGET_HEADERS_MAX	16
#define REMOTE_TARGET_EVERY_MAX		1000000

struct remote_target {
	char		*name;
	char		*url;
	char		*bearer;	/* token, or NULL */
	char		*user;		/* basic auth, or NULL */
	char		*password;	/* with user */
	char		*headers[REMOTE_TARGET_HEADERS_MAX];	/* "Name: value" */
	size_t		 nheaders;
	int64_t		 layer_every;	/* >= 1 */
};

/*
 * Parse spec into t.  0, or -1 with an allocated *cause (t is then
 * empty: remote_target_cleanup is still fine).
 */
int	remote_target_parse(struct remote_target *t, const char *spec,
	    char **cause);
/* Free what t owns, secrets wiped.  Fine on a zeroed or half-parsed t. */
void	remote_target_cleanup(struct remote_target *t);

#endif
