/* SPDX-License-Identifier: MIT */
/*
 * ws_stream: the live stream on libwebsockets; see ws_stream.h.
 * Publishers append refcounted messages to an inbox under ws->lock and
 * call lws_cancel_service(); the service thread then takes the whole
 * inbox at once and hands each message to the clients subscribed to its
 * run: steps into a per-(client, run) slot that keeps only the newest,
 * everything else into the client's bounded FIFO.  A lazy message (a
 * publisher's step snapshot) becomes bytes here, once, when it is first
 * sent or queued, so the steps coalescing drops never cost JSON.  Every
 * other line of this file runs on the service thread.
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

#include "config.h"
#include "ingest.h"
#include "log.h"
#include "ws_stream.h"
#include "xmalloc.h"
#include "thread_name.h"

#define WS_STREAM_PROTOCOL	"gradwatch.v1"
#define WS_STEP_INTERVAL_US	250000	/* at most 4 step messages/s a run */
#define WS_STEP_INTERVAL_ALL_US	500000	/* 2/s for a run seen only through "*" */
#define WS_TIMER_GRID_US	25000	/* timers fire on this grid, together */
#define WS_DRAIN_US		25000	/* steps wait this long for a drain */
#define WS_CLIENT_MAX_MSGS	1000	/* queued messages per client */
#define WS_CLIENT_MAX_BYTES	((size_t)4 << 20)
#define WS_INBOX_MAX_BYTES	((size_t)64 << 20) /* then steps are shed */
#define WS_RX_MAX		4096	/* one message from a client */
#define WS_MAX_SUBS		64
#define WS_KIND_CONTROL		100	/* our own replies: acks, errors */
#define WS_KIND_RESYNC		101

/*
 * One message, shared by every client it goes to.  A lazy one has no
 * bytes until ws_msg_build(): most steps are superseded before that.
 */
struct ws_msg {
	struct ws_msg	*next;		/* inbox link {ws->lock} */
	int		 refs;		/* service thread, once dispatched */
	int		 kind;		/* enum ws_stream_kind or WS_KIND_* */
	char		*run;
	size_t		 len;
	unsigned char	*buf;		/* LWS_PRE bytes, then len; or NULL */
	void		*arg;		/* lazy: what build makes it from */
	ws_stream_build_cb build;
	ws_stream_free_cb free_arg;
};

struct ws_entry {
	struct ws_entry	*next;
	struct ws_msg	*msg;
};

/* The newest unsent step of one run for one client. */
struct ws_slot {
	struct ws_slot	*next;
	char		*run;
	struct ws_msg	*pending;	/* NULL when nothing waits */
	int64_t		 last_sent;	/* monotonic microseconds */
	int64_t		 interval;	/* between two step messages */
};

/* Per connection (lws allocates and zeroes it); service thread only. */
struct ws_client {
	struct ws_stream *ws;
	struct lws	*wsi;
	struct ws_client *next, *prev;
	int		 linked;
	int		 all;		/* subscribed to "*" */
	char		*subs[WS_MAX_SUBS];
	size_t		 nsubs;
	struct ws_entry	*head, *tail;
	size_t		 qn, qbytes;
	struct ws_slot	*slots;
	int		 resync_pending; /* a resync is queued, not yet sent */
	int		 closing;
	int64_t		 timer_due;	/* when the lws timer fires; 0: none */
	int		 need_wake;	/* the dispatch gave it something new */
	char		*rx;
	size_t		 rxlen;
	int		 rx_skip;	/* the rest of a too long message */
};

struct ws_stream {
	const struct config *cfg;
	struct lws_context *ctx;	/* set before the thread starts */
	pthread_t	 thread;
	int		 started;
	atomic_int	 stopping;
	atomic_size_t	 nclients;
	atomic_size_t	 shed;		/* steps dropped at the inbox */

	pthread_mutex_t	 lock;
	struct ws_msg	*inbox, *inbox_tail;	/* {lock} */
	size_t		 inbox_bytes;		/* {lock} */
	int		 woken;		/* {lock} lws_cancel_service() is due */
	int		 drain_armed;	/* {lock} the drain timer will take steps */
	lws_sorted_usec_list_t drain;	/* service thread */

	struct ws_client *clients;	/* service thread */
};

static int64_t
ws_now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct ws_msg *
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

static void
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
static void
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
static struct ws_msg *
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

/* ---- per-client queues ---------------------------------------------- */

static void
ws_client_drop_queue(struct ws_client *c)
{
	struct ws_entry	*e;
	struct ws_slot	*s;

	while ((e = c->head) != NULL) {
		c->head = e->next;
		ws_msg_unref(e->msg);
		free(e);
	}
	c->tail = NULL;
	c->qn = c->qbytes = 0;
	for (s = c->slots; s != NULL; s = s->next) {
		ws_msg_unref(s->pending);
		s->pending = NULL;
	}
	c->resync_pending = 0;
}

static void
ws_client_cleanup(struct ws_client *c)
{
	struct ws_slot	*s;
	size_t		 i;

	ws_client_drop_queue(c);
	while ((s = c->slots) != NULL) {
		c->slots = s->next;
		free(s->run);
		free(s);
	}
	for (i = 0; i < c->nsubs; i++)
		free(c->subs[i]);
	c->nsubs = 0;
	free(c->rx);
	c->rx = NULL;
}

/* Append m (the caller's reference is kept by the queue). */
static void
ws_client_append(struct ws_client *c, struct ws_msg *m)
{
	struct ws_entry	*e;

	e = xmalloc(sizeof *e);
	e->next = NULL;
	e->msg = m;
	if (c->tail != NULL)
		c->tail->next = e;
	else
		c->head = e;
	c->tail = e;
	c->qn++;
	c->qbytes += m->len;
}

/*
 * c's queue is full.  The first time, everything queued is dropped (it
 * can all be fetched again over HTTP) and a resync message takes its
 * place; if the queue fills again before that message could even be
 * sent, the client cannot keep up and is closed.
 */
static void
ws_client_overflow(struct ws_client *c, const char *why)
{
	if (c->resync_pending) {
		log_info("ws_stream: closing a client that cannot keep up");
		ws_client_drop_queue(c);
		c->closing = 1;
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK,
		    LWS_TO_KILL_ASYNC);
		return;
	}
	log_debug("ws_stream: client queue full (%s): resync", why);
	ws_client_drop_queue(c);
	ws_client_append(c, ws_msg_json(WS_KIND_RESYNC,
	    json_pack("{s:s, s:s}", "type", "resync", "reason", why)));
	c->resync_pending = 1;
}

static struct ws_slot *
ws_client_slot(struct ws_client *c, const char *run, int create)
{
	struct ws_slot	*s;

	for (s = c->slots; s != NULL; s = s->next)
		if (strcmp(s->run, run) == 0)
			return s;
	if (!create)
		return NULL;
	s = xcalloc(1, sizeof *s);
	s->run = xstrdup(run);
	s->next = c->slots;
	c->slots = s;
	return s;
}

static int
ws_client_is_subscribed(const struct ws_client *c, const char *run)
{
	size_t	i;

	if (c->all)
		return 1;
	if (run == NULL)
		return 0;
	for (i = 0; i < c->nsubs; i++)
		if (strcmp(c->subs[i], run) == 0)
			return 1;
	return 0;
}

/* 1 if c subscribed to run by name (not only through "*"). */
static int
ws_client_is_named(const struct ws_client *c, const char *run)
{
	size_t	i;

	for (i = 0; i < c->nsubs; i++)
		if (strcmp(c->subs[i], run) == 0)
			return 1;
	return 0;
}

/* Hand m to c as its kind says; takes a reference if it keeps m. */
static void
ws_client_enqueue(struct ws_client *c, struct ws_msg *m)
{
	struct ws_slot	*s;

	if (c->closing)
		return;
	if (m->kind == WS_STREAM_STEP) {
		s = ws_client_slot(c, m->run, 1);
		/* A step already waiting has its wake-up arranged. */
		if (s->pending == NULL)
			c->need_wake = 1;
		ws_msg_unref(s->pending);	/* superseded: coalesced */
		m->refs++;
		s->pending = m;
		/*
		 * A viewer of one run (the run page) gets its steps 4 times a
		 * second; one that sees it only through "*" (the runs list)
		 * needs no more than its last step now and then.
		 */
		s->interval = ws_client_is_named(c, m->run) ?
		    WS_STEP_INTERVAL_US : WS_STEP_INTERVAL_ALL_US;
		return;
	}
	c->need_wake = 1;
	if (m->kind == WS_STREAM_STEP_NONFINITE &&
	    (s = ws_client_slot(c, m->run, 0)) != NULL) {
		ws_msg_unref(s->pending);	/* an older step */
		s->pending = NULL;
	}
	if (c->qn + 1 > WS_CLIENT_MAX_MSGS ||
	    c->qbytes + m->len > WS_CLIENT_MAX_BYTES) {
		ws_client_overflow(c, c->qn + 1 > WS_CLIENT_MAX_MSGS ?
		    "more than 1000 messages queued" :
		    "more than 4 MiB queued");
		return;		/* m is dropped with the rest */
	}
	m->refs++;
	ws_client_append(c, m);
}

/* The next message c may be sent now (the FIFO first), or NULL. */
static struct ws_msg *
ws_client_next(struct ws_client *c, int64_t now)
{
	struct ws_entry	*e;
	struct ws_slot	*s, *best = NULL;
	struct ws_msg	*m;
	if ((e = c->head) != NULL) {
		c->head = e->next;
		if (c->head == NULL)
			c->tail = NULL;
		c->qn--;
		c->qbytes -= e->msg->len;
		m = e->msg;
		free(e);
		return m;
	}
	for (s = c->slots; s != NULL; s = s->next)
		if (s->pending != NULL &&
		    s->last_sent + s->interval <= now &&
		    (best == NULL || s->last_sent < best->last_sent))
			best = s;
	if (best == NULL)
		return NULL;
	m = best->pending;
	best->pending = NULL;
	best->last_sent = now;
	return m;
}

static int
ws_client_has_output(const struct ws_client *c)
{
	const struct ws_slot	*s;

	if (c->head != NULL)
		return 1;
	for (s = c->slots; s != NULL; s = s->next)
		if (s->pending != NULL)
			return 1;
	return 0;
}

/*
 * Ask for WRITEABLE if c has something to send now; if it only has
 * steps that are not due yet, make sure the timer will wake it then.
 * Waking every viewer for a step it may not be sent yet would cost a
 * callback per viewer per commit.
 */
static void
ws_client_wake(struct ws_client *c, int64_t now)
{
	const struct ws_slot	*s;
	int64_t			 due, soonest = 0;

	if (c->closing)
		return;
	if (c->head != NULL) {
		lws_callback_on_writable(c->wsi);
		return;
	}
	for (s = c->slots; s != NULL; s = s->next) {
		if (s->pending == NULL)
			continue;
		due = s->last_sent + s->interval;
		if (due <= now) {
			lws_callback_on_writable(c->wsi);
			return;
		}
		if (soonest == 0 || due < soonest)
			soonest = due;
	}
	if (soonest == 0)
		return;
	/*
	 * Round up to the grid, so that the viewers' timers expire in the
	 * same service pass: one poll() then serves them all.
	 */
	soonest += WS_TIMER_GRID_US - 1 - (soonest + WS_TIMER_GRID_US - 1) %
	    WS_TIMER_GRID_US;
	if (c->timer_due == 0 || soonest < c->timer_due) {
		c->timer_due = soonest;
		lws_set_timer_usecs(c->wsi, soonest - now);
	}
}

/* WRITEABLE: one lws_write.  -1 closes the connection. */
static int
ws_client_send_next(struct ws_client *c)
{
	struct ws_msg	*m;
	int64_t		 now;
	int		 n;

	if (c->closing)
		return -1;
	now = ws_now_us();
	m = ws_client_next(c, now);
	if (m == NULL) {
		ws_client_wake(c, now);		/* a timer for later steps */
		return 0;
	}
	if (m->kind == WS_KIND_RESYNC)
		c->resync_pending = 0;
	ws_msg_build(m);	/* once, for every viewer it goes to */
	n = lws_write(c->wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
	if (n < 0 || (size_t)n < m->len) {
		ws_msg_unref(m);
		return -1;
	}
	ws_msg_unref(m);
	if (ws_client_has_output(c))
		ws_client_wake(c, now);
	return 0;
}

/* ---- commands from a client ----------------------------------------- */

static void
ws_client_reply(struct ws_client *c, json_t *o)
{
	struct ws_msg	*m = ws_msg_json(WS_KIND_CONTROL, o);

	ws_client_enqueue(c, m);
	ws_msg_unref(m);
	lws_callback_on_writable(c->wsi);
}

static void
ws_client_error(struct ws_client *c, const char *message)
{
	ws_client_reply(c, json_pack("{s:s, s:s}", "type", "error",
	    "message", message));
}

/* Add (add=1) or remove run, or "*"; -1 with a message on bad input. */
static int
ws_client_sub(struct ws_client *c, const char *run, int add,
    const char **why)
{
	size_t	i;

	if (strcmp(run, "*") == 0) {
		c->all = add;
		return 0;
	}
	if (!ingest_is_run_key(run)) {
		*why = "subscribe: a run key, or \"*\"";
		return -1;
	}
	for (i = 0; i < c->nsubs; i++)
		if (strcmp(c->subs[i], run) == 0)
			break;
	if (add && i == c->nsubs) {
		if (c->nsubs == WS_MAX_SUBS) {
			*why = "subscribe: at most 64 runs (or \"*\")";
			return -1;
		}
		c->subs[c->nsubs++] = xstrdup(run);
	} else if (!add && i < c->nsubs) {
		free(c->subs[i]);
		c->subs[i] = c->subs[--c->nsubs];
	}
	return 0;
}

/* {"subscribe": run | "*" | [...]} and {"unsubscribe": ...}. */
static void
ws_client_command(struct ws_client *c, const char *text, size_t len)
{
	json_t		*o, *v, *runs, *item;
	const char	*key, *why = "expected {\"subscribe\": \"<run>\"}";
	size_t		 i;
	int		 add;

	o = json_loadb(text, len, 0, NULL);
	if (!json_is_object(o) || json_object_size(o) != 1) {
		ws_client_error(c, why);
		goto out;
	}
	key = json_object_iter_key(json_object_iter(o));
	v = json_object_iter_value(json_object_iter(o));
	if (strcmp(key, "subscribe") == 0)
		add = 1;
	else if (strcmp(key, "unsubscribe") == 0)
		add = 0;
	else {
		ws_client_error(c, why);
		goto out;
	}
	if (json_is_string(v)) {
		if (ws_client_sub(c, json_string_value(v), add, &why) == -1) {
			ws_client_error(c, why);
			goto out;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, item) {
			if (!json_is_string(item) || ws_client_sub(c,
			    json_string_value(item), add, &why) == -1) {
				ws_client_error(c, why);
				goto out;
			}
		}
	} else {
		ws_client_error(c, why);
		goto out;
	}
	runs = json_array();
	if (c->all)
		json_array_append_new(runs, json_string("*"));
	for (i = 0; i < c->nsubs; i++)
		json_array_append_new(runs, json_string(c->subs[i]));
	ws_client_reply(c, json_pack("{s:s, s:o}", "type", "subscribed",
	    "runs", runs));
out:
	json_decref(o);
}

/* ---- the handshake: token and Origin -------------------------------- */

/* Constant-time comparison of a candidate with the token. */
static int
ws_token_is_equal(const char *cand, const char *tok)
{
	size_t		 i, n = strlen(cand), m = strlen(tok);
	unsigned char	 diff = n != m;

	for (i = 0; i < m; i++)
		diff |= (unsigned char)tok[i] ^
		    (unsigned char)(i < n ? cand[i] : 0);
	return diff == 0;
}

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
		ok = ws_token_is_equal(buf + 7, ws->cfg->token);
	if (!ok && (v = lws_get_urlarg_by_name(wsi, "token=", buf,
	    sizeof buf)) != NULL)
		ok = ws_token_is_equal(v, ws->cfg->token);
	explicit_bzero(buf, sizeof buf);
	return ok;
}

/* Split "host[:port]" or "[v6][:port]" into host and port (0: none). */
static int
ws_split_hostport(const char *s, char *host, size_t hostsz, long *port)
{
	const char	*end, *colon;
	size_t		 n;
	char		*ep;

	*port = 0;
	if (*s == '[') {
		if ((end = strchr(s, ']')) == NULL)
			return -1;
		s++;
		n = (size_t)(end - s);
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return -1;
	} else {
		colon = strchr(s, ':');
		n = colon != NULL ? (size_t)(colon - s) : strlen(s);
	}
	if (n == 0 || n >= hostsz)
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	if (colon != NULL) {
		*port = strtol(colon + 1, &ep, 10);
		if (*ep != '\0' || *port <= 0 || *port > 65535)
			return -1;
	}
	return 0;
}

static int
ws_host_is_literal_or_local(const char *host, const struct config *cfg)
{
	struct addrinfo	 hints, *res = NULL;

	if (strcasecmp(host, "localhost") == 0 ||
	    strcasecmp(host, cfg->http_host) == 0 ||
	    strcasecmp(host, cfg->ws_host) == 0)
		return 1;
	memset(&hints, 0, sizeof hints);
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return 0;
	freeaddrinfo(res);
	return 1;
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
	const struct config	*cfg = ws->cfg;
	char			 origin[512], host[512];
	char			 ohost[256], hhost[256];
	const char		*p;
	long			 oport, hport;
	int			 https;

	if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0)
		return 1;	/* not a browser */
	if (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) <= 0 ||
	    lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) <= 0)
		return 0;
	if (strncasecmp(origin, "http://", 7) == 0) {
		https = 0;
		p = origin + 7;
	} else if (strncasecmp(origin, "https://", 8) == 0) {
		https = 1;
		p = origin + 8;
	} else
		return 0;
	if (ws_split_hostport(p, ohost, sizeof ohost, &oport) == -1 ||
	    ws_split_hostport(host, hhost, sizeof hhost, &hport) == -1)
		return 0;
	if (oport == 0)
		oport = https ? 443 : 80;
	if (strcasecmp(ohost, hhost) != 0 ||
	    !ws_host_is_literal_or_local(ohost, cfg))
		return 0;
	return cfg->http_port == 0 || oport == cfg->http_port;
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
	now = ws_now_us();
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

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		if (!ws_origin_is_allowed(ws, wsi)) {
			log_info("ws_stream: refused a connection from a "
			    "foreign Origin");
			return -1;
		}
		if (!ws_is_authorized(ws, wsi)) {
			log_info("ws_stream: refused a connection without "
			    "the token");
			return -1;
		}
		return 0;
	case LWS_CALLBACK_ESTABLISHED:
		ws_client_attach(ws, c, wsi);
		return 0;
	case LWS_CALLBACK_CLOSED:
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
