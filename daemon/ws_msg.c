/* SPDX-License-Identifier: MIT */
/*
 * ws_msg: the stream's messages, shared by every client they go to and
 * freed with their last reference; a lazy one gets its bytes when it is
 * first sent.  See ws_stream_int.h for who calls what on which thread.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "log.h"
#include "ws_stream.h"
#include "ws_stream_int.h"
#include "xmalloc.h"

struct ws_msg *
ws_msg_new(int kind, const char *run, const char *json, size_t len)
{
	struct ws_msg	*m;

	m = xcalloc(1, sizeof *m + LWS_PRE + len);
	m->refs = 1;
	m->kind = kind;
	m->run = run != NULL ? xstrdup(run) : NULL;
	m->len = len;
	m->buf = (unsigned char *)(m + 1);
	memcpy(m->buf + LWS_PRE, json, len);
	return m;
}

void
ws_msg_unref(struct ws_msg *m)
{
	if (m == NULL || --m->refs > 0)
		return;
	if (m->arg != NULL)
		m->free_arg(m->arg);
	if (m->buf != (unsigned char *)(m + 1))
		free(m->buf);
	free(m->run);
	free(m);
}

/* Give a lazy message its bytes (service thread). */
void
ws_msg_build(struct ws_msg *m)
{
	char	*s;
	size_t	 len;

	if (m->buf != NULL)
		return;
	s = m->build(m->arg, &len);
	m->buf = xmalloc(LWS_PRE + len);
	memcpy(m->buf + LWS_PRE, s, len);
	m->len = len;
	free(s);
	m->free_arg(m->arg);
	m->arg = NULL;
}

/* A control message (ack, error, resync) for one client. */
struct ws_msg *
ws_msg_json(int kind, json_t *o)
{
	struct ws_msg	*m;
	char		*s;

	if ((s = json_dumps(o, JSON_COMPACT)) == NULL)
		fatalx("ws_stream: json_dumps failed");
	json_decref(o);
	m = ws_msg_new(kind, NULL, s, strlen(s));
	free(s);
	return m;
}
