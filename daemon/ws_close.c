/* SPDX-License-Identifier: MIT */
/*
 * ws_close: how a viewer's connection ends.  The keepalive pings a
 * viewer ws-ping seconds after its last pong and closes one silent for
 * four times that (lws's own, which pings at 300 s with an empty payload
 * that it never hands up as a pong and hangs up silently at 310 s, is
 * off).  And every end is told in one info line: who (the address and
 * subscriptions), how long it was open, and why.  A close we decide
 * (the keepalive, a viewer that cannot keep up, a failed send, the
 * daemon stopping) or the viewer's own close frame sets the reason when
 * it happens; libwebsockets closes the rest itself (a protocol error, a
 * lost connection) and calls back only CLOSED, where the reason is read
 * from the close status lws prepared for the viewer, if any.  Service
 * thread only (main's once that thread has ended, while ws_stream_stop
 * destroys the context).
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
#include "now.h"
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

/*
 * Our pings' payload.  Not empty: lws hands up no empty pong.  And text:
 * lws 4.1 checks a pong as UTF-8 after a text message (and closes the
 * connection with 1007 when it is not).
 */
#define WS_CLOSE_PING		"gradwatch"
/* A ping this long without a pong closes the viewer. */
#define WS_CLOSE_HANGUP(ws)	((ws)->ping_us * 4)

static void	ws_close_keepalive_cb(lws_sorted_usec_list_t *sul);

/*
 * Ping a viewer ping_us after its last pong; close it at four times
 * that.  The timer runs only at those two deadlines.
 */
static void
ws_close_keepalive(struct ws_client *c, int64_t now)
{
	struct ws_stream	*ws = c->ws;
	int64_t			 since = now - c->pong_at, next;

	if (c->closing)
		return;
	if (since >= WS_CLOSE_HANGUP(ws)) {
		if (c->ping_at > c->pong_at)
			ws_close_why(c, "no pong for %.0f s: a ping went "
			    "unanswered for %.0f s (ws-ping)", since / 1e6,
			    (now - c->ping_at) / 1e6);
		else
			ws_close_why(c, "no pong for %.0f s: its ping could "
			    "not even be sent, behind what it did not read "
			    "(ws-ping)", since / 1e6);
		c->closing = 1;
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK,
		    LWS_TO_KILL_ASYNC);
		return;
	}
	if (since >= ws->ping_us) {
		if (!c->ping_due && c->ping_at <= c->pong_at) {
			c->ping_due = 1;
			lws_callback_on_writable(c->wsi);
		}
		next = c->pong_at + WS_CLOSE_HANGUP(ws);
	} else
		next = c->pong_at + ws->ping_us;
	lws_sul_schedule(ws->ctx, 0, &c->keepalive, ws_close_keepalive_cb,
	    next - now);
}

static void
ws_close_keepalive_cb(lws_sorted_usec_list_t *sul)
{
	struct ws_client	*c = lws_container_of(sul, struct ws_client,
				    keepalive);

	ws_close_keepalive(c, now_mono_us());
}

void
ws_close_begin(struct ws_client *c, struct lws *wsi, int64_t now)
{
	ws_close_peer(wsi, c->peer, sizeof c->peer);
	c->opened = c->pong_at = now;
	ws_close_keepalive(c, now);
	log_debug("ws_stream: viewer %s connected", c->peer);
}

void
ws_close_pong(struct ws_client *c, int64_t now)
{
	c->pong_at = now;
	if (!c->closing)	/* the next ping, ping_us from now */
		lws_sul_schedule(c->ws->ctx, 0, &c->keepalive,
		    ws_close_keepalive_cb, c->ws->ping_us);
}

int
ws_close_send_ping(struct ws_client *c, int64_t now)
{
	unsigned char	buf[LWS_PRE + sizeof WS_CLOSE_PING - 1];
	size_t		len = sizeof WS_CLOSE_PING - 1;

	memcpy(buf + LWS_PRE, WS_CLOSE_PING, len);
	c->ping_due = 0;
	c->ping_at = now;
	if (lws_write(c->wsi, buf + LWS_PRE, len, LWS_WRITE_PING) < (int)len) {
		ws_close_why(c, "a send failed: the connection broke");
		return -1;
	}
	return 0;
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
 * viewer; a lost connection (EOF, a reset) prepares none.
 */
static void
ws_close_guess(struct ws_client *c, struct lws *wsi)
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
ws_close_end(struct ws_client *c, struct lws *wsi, int stopping, int64_t now)
{
	char	runs[256];

	lws_sul_cancel(&c->keepalive);
	if (stopping)
		ws_close_why(c, "the daemon is stopping");
	if (c->why[0] == '\0')
		ws_close_guess(c, wsi);
	ws_close_runs(c, runs, sizeof runs);
	log_info("ws_stream: viewer %s (subscribed to %s) closed after "
	    "%.1f s, %zu message%s sent: %s", c->peer, runs,
	    (now - c->opened) / 1e6, c->nsent, c->nsent == 1 ? "" : "s",
	    c->why);
}
