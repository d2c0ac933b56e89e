/* SPDX-License-Identifier: MIT */
/*
 * ws_stream_int: what the stream's files share: its messages (ws_msg.c),
 * its clients (ws_client.c), why they close (ws_close.c) and the stream
 * with its service thread (ws_stream.c).  Publishers touch only the inbox, under ws->lock;
 * everything else belongs to the service thread.
 */
#ifndef GW_WS_STREAM_INT_H
#define GW_WS_STREAM_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "ws_stream.h"

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
	char		 peer[64];	/* "addr:port", for the log */
	int64_t		 opened;	/* monotonic us at ESTABLISHED */
	int64_t		 pong_at;	/* ESTABLISHED, or the last pong */
	int64_t		 ping_at;	/* when our last ping went out; 0: none */
	int		 ping_due;	/* send a ping at the next WRITEABLE */
	lws_sorted_usec_list_t keepalive; /* ws_close.c's timer */
	size_t		 nsent;		/* messages written */
	char		 why[192];	/* why it closes; the first reason wins */
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
	lws_retry_bo_t	 no_idle;	/* turns lws's own keepalive off */
	int64_t		 ping_us;	/* ws-ping: a ping this long after a pong */

	struct ws_client *clients;	/* service thread */
};

/* ws_msg.c */
struct ws_msg	*ws_msg_new(int kind, const char *run, const char *json,
		    size_t len);
void		 ws_msg_unref(struct ws_msg *m);
void		 ws_msg_build(struct ws_msg *m);
struct ws_msg	*ws_msg_json(int kind, json_t *o);

/* ws_client.c */
void	ws_client_cleanup(struct ws_client *c);
int	ws_client_is_subscribed(const struct ws_client *c, const char *run);
void	ws_client_enqueue(struct ws_client *c, struct ws_msg *m);
void	ws_client_wake(struct ws_client *c, int64_t now);
int	ws_client_send_next(struct ws_client *c);
void	ws_client_error(struct ws_client *c, const char *message);
void	ws_client_command(struct ws_client *c, const char *text, size_t len);

/* ws_close.c */
/* wsi's peer as "addr:port" ("[addr]:port" for IPv6), or "?". */
void	ws_close_peer(struct lws *wsi, char *buf, size_t size);
/* c is established (and attached) at now: note who, start the keepalive. */
void	ws_close_begin(struct ws_client *c, struct lws *wsi, int64_t now);
/* A pong from c (our pings carry a payload, so lws hands them up). */
void	ws_close_pong(struct ws_client *c, int64_t now);
/* WRITEABLE with c->ping_due: write the ping.  -1 closes the connection. */
int	ws_close_send_ping(struct ws_client *c, int64_t now);
/* Why c is closing, unless it has a reason already. */
void	ws_close_why(struct ws_client *c, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* The viewer's close frame: in and len as PEER_INITIATED_CLOSE has them. */
void	ws_close_frame(struct ws_client *c, const unsigned char *in,
	    size_t len);
/*
 * CLOSED: stop the keepalive, find the reason if none was set (stopping:
 * the daemon is) and log the line.
 */
void	ws_close_end(struct ws_client *c, struct lws *wsi, int stopping,
	    int64_t now);

#endif
