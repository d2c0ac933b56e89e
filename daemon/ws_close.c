/* SPDX-License-Identifier: MIT */
/*
 * ws_close: why a viewer's connection ended, told in one info line: who
 * (its address and subscriptions), how long it was open, and why.  A
 * close we decide (a viewer that cannot keep up, a failed send, the
 * daemon stopping) or the viewer's own close frame sets the reason when
 * it happens.  libwebsockets closes some connections itself (a protocol
 * error, the keepalive, a lost connection) and only calls back CLOSED,
 * with no reason: that one is read then, from the close status lws
 * prepared for the viewer and from when the viewer last answered a
 * ping.  Service thread only (main's once that thread has ended, while
 * ws_stream_stop destroys the context).
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libwebsockets.h>

#include "log.h"
#include "ws_stream.h"
#include "ws_stream_int.h"

#define WS_CLOSE_RUNS_SHOWN	3	/* subscriptions named in the line */

void
ws_close_peer(struct lws *wsi, char *buf, size_t size)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof ss;
	char			 host[NI_MAXHOST], serv[NI_MAXSERV];
	int			 fd;

	snprintf(buf, size, "?");
	if ((fd = lws_get_socket_fd(wsi)) < 0 ||
	    getpeername(fd, (struct sockaddr *)&ss, &sslen) == -1 ||
	    getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof host,
	    serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return;
	snprintf(buf, size, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
	    host, serv);
}

void
ws_close_begin(struct ws_client *c, struct lws *wsi, int64_t now)
{
	ws_close_peer(wsi, c->peer, sizeof c->peer);
	c->opened = c->pong_at = now;
	log_debug("ws_stream: viewer %s connected", c->peer);
}

void
ws_close_why(struct ws_client *c, const char *fmt, ...)
{
	va_list	ap;

	if (c->why[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof c->why, fmt, ap);
	va_end(ap);
}

/* A close frame's reason text as a quoted, printable string, or "". */
static void
ws_close_text(const unsigned char *p, size_t len, char *buf, size_t size)
{
	size_t	i, n = 0;

	if (len == 0 || size < 8) {
		buf[0] = '\0';
		return;
	}
	buf[n++] = ' ';
	buf[n++] = '"';
	for (i = 0; i < len && n + 5 < size; i++)
		buf[n++] = p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' ?
		    (char)p[i] : '?';
	if (i < len)
		buf[n++] = '.', buf[n++] = '.';
	buf[n++] = '"';
	buf[n] = '\0';
}

void
ws_close_frame(struct ws_client *c, const unsigned char *in, size_t len)
{
	char	text[80];

	if (len < 2) {
		ws_close_why(c, "the viewer closed it (no code)");
		return;
	}
	ws_close_text(in + 2, len - 2, text, sizeof text);
	ws_close_why(c, "the viewer closed it (code %u%s)",
	    (unsigned)(in[0] << 8 | in[1]), text);
}

/* What a close status lws sent the viewer means. */
static const char *
ws_close_status_name(unsigned int code)
{
	switch (code) {
	case LWS_CLOSE_STATUS_PROTOCOL_ERR:
		return "a protocol error";
	case LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE:
		return "a frame of a kind it does not take";
	case LWS_CLOSE_STATUS_INVALID_PAYLOAD:
		return "a text message that is not UTF-8";
	case LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE:
		return "a message too large";
	default:
		return "an error";
	}
}

/*
 * No reason was set when it happened: lws closed the connection on its
 * own.  It says why only through the close status it prepared for the
 * viewer; the keepalive's hang-up and a lost connection prepare none,
 * and the time since the last pong tells them apart.
 */
static void
ws_close_guess(struct ws_client *c, struct lws *wsi, unsigned int hangup,
    int64_t now)
{
	const unsigned char	*p;
	char			 text[80];
	int			 n;

	if ((n = lws_get_close_length(wsi)) >= 2 &&
	    (p = lws_get_close_payload(wsi)) != NULL) {
		ws_close_text(p + 2, (size_t)n - 2, text, sizeof text);
		ws_close_why(c, "libwebsockets closed it: %s from the viewer "
		    "(code %u%s)", ws_close_status_name(p[0] << 8 | p[1]),
		    (unsigned)(p[0] << 8 | p[1]), text);
		return;
	}
	/* The hang-up timer runs hangup s after the last pong, to the ms. */
	if (hangup > 0 && now - c->pong_at >= (int64_t)hangup * 1000000 - 50000) {
		ws_close_why(c, "no pong for %.0f s: the viewer stopped "
		    "answering pings (ws-ping)", (now - c->pong_at) / 1e6);
		return;
	}
	ws_close_why(c, "the connection ended without a close frame");
}

/* "*", "a, b", "a, b, c and 2 more", or "nothing". */
static void
ws_close_runs(const struct ws_client *c, char *buf, size_t size)
{
	size_t	i, n = 0, shown = 0;

	buf[0] = '\0';
	if (c->all)
		n += (size_t)snprintf(buf, size, "\"*\"");
	for (i = 0; i < c->nsubs && shown < WS_CLOSE_RUNS_SHOWN &&
	    n < size; i++, shown++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s",
		    n > 0 ? ", " : "", c->subs[i]);
	if (i < c->nsubs && n < size)
		snprintf(buf + n, size - n, " and %zu more", c->nsubs - i);
	if (buf[0] == '\0')
		snprintf(buf, size, "nothing");
}

void
ws_close_end(struct ws_client *c, struct lws *wsi, int stopping,
    unsigned int hangup, int64_t now)
{
	char	runs[256];

	if (stopping)
		ws_close_why(c, "the daemon is stopping");
	if (c->why[0] == '\0')
		ws_close_guess(c, wsi, hangup, now);
	ws_close_runs(c, runs, sizeof runs);
	log_info("ws_stream: viewer %s (subscribed to %s) closed after "
	    "%.1f s, %zu message%s sent: %s", c->peer, runs,
	    (now - c->opened) / 1e6, c->nsent, c->nsent == 1 ? "" : "s",
	    c->why);
}
