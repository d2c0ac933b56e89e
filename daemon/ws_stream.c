/* SPDX-License-Identifier: MIT */
/*
 * ws_stream: the live stream on libwebsockets; see ws_stream.h.
 * Publishers append refcounted messages to an inbox under ws->lock and
 * call lws_cancel_service(); the service thread then takes the whole
 * inbox at once and hands each message to the clients subscribed to its
 * run: steps into a per-(client, run) slot that keeps only the newest,
 * everything else into the client's bounded FIFO.  A lazy message (a
 * publisher's step snapshot) becomes bytes here, once, when it is first
 * sent or queued, so the steps coalescing drops never cost JSON.  This
 * file holds the handshake (token and Origin, auth.h), the service
 * thread and the publishers' side; the messages are ws_msg.c, each
 * viewer's queue and commands ws_client.c, its keepalive and the line
 * that logs its end ws_close.c.  Every line here but the publishers'
 * runs on the service thread.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "auth.h"
#include "config.h"
#include "ingest.h"
#include "log.h"
#include "now.h"
#include "ws_stream.h"
#include "ws_stream_int.h"
#include "xmalloc.h"
#include "thread_name.h"

/* ---- the handshake: token and Origin -------------------------------- */

static int
ws_is_authorized(struct ws_stream *ws, struct lws *wsi)
{
	char		 buf[1024];
	const char	*v;
	int		 ok = 0;

	if (ws->cfg->token == NULL)
		return 1;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION) > 0 &&
	    lws_hdr_copy(wsi, buf, sizeof buf,
	    WSI_TOKEN_HTTP_AUTHORIZATION) > 0 &&
	    strncmp(buf, "Bearer ", 7) == 0)
		ok = auth_token_equal(buf + 7, ws->cfg->token);
	if (!ok && (v = lws_get_urlarg_by_name(wsi, "token=", buf,
	    sizeof buf)) != NULL)
		ok = auth_token_equal(v, ws->cfg->token);
	explicit_bzero(buf, sizeof buf);
	return ok;
}

/*
 * A browser's Origin must be the dashboard: the host the page used to
 * reach us (the Host header's name) and the HTTP port.  That name must
 * be an address, localhost or a configured name, so that a page from a
 * rebound DNS name cannot pass as the dashboard.
 */
static int
ws_origin_is_allowed(struct ws_stream *ws, struct lws *wsi)
{
	char	origin[512], host[512];

	if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0)
		return 1;	/* not a browser */
	if (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) <= 0 ||
	    lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) <= 0)
		return 0;
	return auth_origin_ok(origin, host, ws->cfg);
}

/* ---- the service thread ---------------------------------------------- */

static void	ws_stream_drain_cb(lws_sorted_usec_list_t *sul);

/*
 * Give every message in the inbox to the clients subscribed to it.
 * While steps keep coming, the drain timer takes them every WS_DRAIN_US
 * and publishers of steps do not wake this thread (most are superseded
 * before a viewer may be sent one); the first step after a quiet spell,
 * and anything else, wakes it at once.
 */
static void
ws_stream_dispatch(struct ws_stream *ws)
{
	struct ws_msg		*m, *next;
	struct ws_client	*c;
	int64_t			 now;
	int			 steps = 0, arm;

	pthread_mutex_lock(&ws->lock);
	m = ws->inbox;
	ws->inbox = ws->inbox_tail = NULL;
	ws->inbox_bytes = 0;
	ws->woken = 0;
	pthread_mutex_unlock(&ws->lock);
	if (m == NULL)
		return;
	for (; m != NULL; m = next) {
		next = m->next;
		steps |= m->kind == WS_STREAM_STEP;
		if (m->kind != WS_STREAM_STEP)	/* queued: its size counts */
			ws_msg_build(m);
		for (c = ws->clients; c != NULL; c = c->next)
			if (ws_client_is_subscribed(c, m->run))
				ws_client_enqueue(c, m);
		ws_msg_unref(m);
	}
	now = now_mono_us();
	for (c = ws->clients; c != NULL; c = c->next)
		if (c->need_wake) {
			c->need_wake = 0;
			ws_client_wake(c, now);
		}
	if (!steps)
		return;
	pthread_mutex_lock(&ws->lock);
	arm = !ws->drain_armed;
	ws->drain_armed = 1;
	pthread_mutex_unlock(&ws->lock);
	if (arm)
		lws_sul_schedule(ws->ctx, 0, &ws->drain, ws_stream_drain_cb,
		    WS_DRAIN_US);
}

/* The drain timer: the steps published since the last dispatch. */
static void
ws_stream_drain_cb(lws_sorted_usec_list_t *sul)
{
	struct ws_stream	*ws = lws_container_of(sul, struct ws_stream,
				    drain);

	pthread_mutex_lock(&ws->lock);
	ws->drain_armed = 0;	/* the next step wakes us, unless... */
	pthread_mutex_unlock(&ws->lock);
	ws_stream_dispatch(ws);	/* ...this finds steps and re-arms */
}

static void
ws_client_attach(struct ws_stream *ws, struct ws_client *c, struct lws *wsi)
{
	c->ws = ws;
	c->wsi = wsi;
	c->prev = NULL;
	c->next = ws->clients;
	if (ws->clients != NULL)
		ws->clients->prev = c;
	ws->clients = c;
	c->linked = 1;
	atomic_fetch_add(&ws->nclients, 1);
}

static void
ws_client_detach(struct ws_stream *ws, struct ws_client *c)
{
	if (!c->linked)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		ws->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->linked = 0;
	ws_client_cleanup(c);
	atomic_fetch_sub(&ws->nclients, 1);
}

static int
ws_stream_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct ws_stream	*ws = lws_context_user(lws_get_context(wsi));
	struct ws_client	*c = user;
	char			 peer[64];

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		if (!ws_origin_is_allowed(ws, wsi)) {
			ws_close_peer(wsi, peer, sizeof peer);
			log_info("ws_stream: refused a connection from %s: a "
			    "foreign Origin", peer);
			return -1;
		}
		if (!ws_is_authorized(ws, wsi)) {
			ws_close_peer(wsi, peer, sizeof peer);
			log_info("ws_stream: refused a connection from %s: "
			    "no token or a wrong one", peer);
			return -1;
		}
		return 0;
	case LWS_CALLBACK_ESTABLISHED:
		ws_client_attach(ws, c, wsi);
		ws_close_begin(c, wsi, now_mono_us());
		return 0;
	case LWS_CALLBACK_RECEIVE_PONG:	/* the keepalive's answer */
		ws_close_pong(c, now_mono_us());
		return 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		ws_close_frame(c, in, len);
		return 0;
	case LWS_CALLBACK_CLOSED:	/* every way a viewer goes: ws_close.c */
		if (c->linked)		/* not a refused handshake */
			ws_close_end(c, wsi, atomic_load(&ws->stopping),
			    now_mono_us());
		ws_client_detach(ws, c);
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:	/* publish() woke us */
		ws_stream_dispatch(ws);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return ws_client_send_next(c);
	case LWS_CALLBACK_TIMER:	/* a coalesced step fell due */
		c->timer_due = 0;
		lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (c->rx_skip || c->rxlen + len > WS_RX_MAX) {
			if (!c->rx_skip)
				ws_client_error(c, "message too long");
			c->rxlen = 0;
			c->rx_skip = !lws_is_final_fragment(wsi) ||
			    lws_remaining_packet_payload(wsi) > 0;
			return 0;
		}
		if (c->rx == NULL)
			c->rx = xmalloc(WS_RX_MAX);
		memcpy(c->rx + c->rxlen, in, len);
		c->rxlen += len;
		if (!lws_is_final_fragment(wsi) ||
		    lws_remaining_packet_payload(wsi) > 0)
			return 0;
		ws_client_command(c, c->rx, c->rxlen);
		c->rxlen = 0;
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols ws_stream_protocols[] = {
	{ WS_STREAM_PROTOCOL, ws_stream_cb, sizeof(struct ws_client),
	    WS_RX_MAX, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void *
ws_stream_main(void *arg)
{
	struct ws_stream	*ws = arg;

	thread_name("gw-stream");
	while (!atomic_load(&ws->stopping))
		if (lws_service(ws->ctx, 0) < 0)
			break;
	return NULL;
}

/* lws's own messages, into ours (errors and warnings only). */
static void
ws_stream_log_cb(int level, const char *line)
{
	size_t	n = strlen(line);

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (level & LLL_ERR)
		log_warnx("ws_stream: lws: %.*s", (int)n, line);
	else
		log_debug("ws_stream: lws: %.*s", (int)n, line);
}

/* The numeric address of host, for lws's iface (which takes no names). */
static int
ws_stream_resolve(const char *host, char *out, size_t outsz, int *v6,
    char **cause)
{
	struct addrinfo	 hints, *res = NULL;
	int		 rc;

	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((rc = getaddrinfo(host, NULL, &hints, &res)) != 0) {
		xasprintf(cause, "ws_stream: %s: %s", host, gai_strerror(rc));
		return -1;
	}
	rc = getnameinfo(res->ai_addr, res->ai_addrlen, out, outsz, NULL, 0,
	    NI_NUMERICHOST);
	*v6 = res->ai_family == AF_INET6;
	freeaddrinfo(res);
	if (rc != 0) {
		xasprintf(cause, "ws_stream: %s: %s", host, gai_strerror(rc));
		return -1;
	}
	return 0;
}

struct ws_stream *
ws_stream_start(const struct config *cfg, char **cause)
{
	struct lws_context_creation_info	 info;
	struct ws_stream			*ws;
	char					 iface[NI_MAXHOST];
	int					 v6;

	if (ws_stream_resolve(cfg->ws_host, iface, sizeof iface, &v6,
	    cause) == -1)
		return NULL;
	ws = xcalloc(1, sizeof *ws);
	ws->cfg = cfg;
	pthread_mutex_init(&ws->lock, NULL);
	lws_set_log_level(LLL_ERR | LLL_WARN, ws_stream_log_cb);
	memset(&info, 0, sizeof info);
	info.port = cfg->ws_port;
	info.iface = iface;
	info.protocols = ws_stream_protocols;
	info.user = ws;
	info.count_threads = 1;
	info.timeout_secs = 10;
	/*
	 * The keepalive is ws_close.c's.  lws's own (a ping at 300 s, closed
	 * silently at 310 s without a pong) is off: no hang-up time.
	 */
	ws->ping_us = (int64_t)cfg->ws_ping * 1000000;
	info.retry_and_idle_policy = &ws->no_idle;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 |
	    (v6 ? 0 : LWS_SERVER_OPTION_DISABLE_IPV6);
	if ((ws->ctx = lws_create_context(&info)) == NULL) {
		xasprintf(cause, "ws_stream: cannot listen on %s:%u",
		    cfg->ws_host, cfg->ws_port);
		goto fail;
	}
	if (pthread_create(&ws->thread, NULL, ws_stream_main, ws) != 0) {
		xasprintf(cause, "ws_stream: pthread_create failed");
		goto fail;
	}
	ws->started = 1;
	return ws;

fail:
	ws_stream_stop(ws);
	return NULL;
}

void
ws_stream_stop(struct ws_stream *ws)
{
	struct ws_msg	*m;

	if (ws == NULL)
		return;
	if (ws->started) {
		atomic_store(&ws->stopping, 1);
		lws_cancel_service(ws->ctx);
		pthread_join(ws->thread, NULL);
	}
	/* The service thread is gone: its callbacks now run here. */
	if (ws->ctx != NULL)
		lws_context_destroy(ws->ctx);
	while ((m = ws->inbox) != NULL) {
		ws->inbox = m->next;
		ws_msg_unref(m);
	}
	if (atomic_load(&ws->shed) > 0)
		log_info("ws_stream: %zu step messages shed while the stream "
		    "was behind", atomic_load(&ws->shed));
	pthread_mutex_destroy(&ws->lock);
	free(ws);
}

/* Append m to the inbox (any thread); size is its inbox weight. */
static void
ws_stream_inbox_put(struct ws_stream *ws, struct ws_msg *m, size_t size)
{
	int	 wake = 0;

	pthread_mutex_lock(&ws->lock);
	if (m->kind == WS_STREAM_STEP &&
	    ws->inbox_bytes + size > WS_INBOX_MAX_BYTES) {
		pthread_mutex_unlock(&ws->lock);
		atomic_fetch_add(&ws->shed, 1);
		ws_msg_unref(m);
		return;
	}
	/* A step can wait for the drain timer when it is armed. */
	if (!ws->woken && (m->kind != WS_STREAM_STEP || !ws->drain_armed))
		ws->woken = wake = 1;
	if (ws->inbox_tail != NULL)
		ws->inbox_tail->next = m;
	else
		ws->inbox = m;
	ws->inbox_tail = m;
	ws->inbox_bytes += size;
	pthread_mutex_unlock(&ws->lock);
	if (wake)
		lws_cancel_service(ws->ctx);	/* the only off-thread lws call */
}

void
ws_stream_publish(struct ws_stream *ws, enum ws_stream_kind kind,
    const char *run, const char *json, size_t len)
{
	if (ws == NULL || atomic_load(&ws->nclients) == 0)
		return;
	ws_stream_inbox_put(ws, ws_msg_new((int)kind, run, json, len), len);
}

void
ws_stream_publish_lazy(struct ws_stream *ws, enum ws_stream_kind kind,
    const char *run, void *arg, size_t size, ws_stream_build_cb build,
    ws_stream_free_cb free_arg)
{
	struct ws_msg	*m;

	if (ws == NULL || atomic_load(&ws->nclients) == 0) {
		free_arg(arg);
		return;
	}
	m = xcalloc(1, sizeof *m);
	m->refs = 1;
	m->kind = (int)kind;
	m->run = run != NULL ? xstrdup(run) : NULL;
	m->arg = arg;
	m->build = build;
	m->free_arg = free_arg;
	ws_stream_inbox_put(ws, m, size);
}

size_t
ws_stream_clients(struct ws_stream *ws)
{
	return ws == NULL ? 0 : atomic_load(&ws->nclients);
}
