/* SPDX-License-Identifier: MIT */
/*
 * ws_stream: the live stream (API.md, "Stream") on libwebsockets.  One
 * service thread owns the lws context and every client; other threads
 * only publish, which copies the message under a short lock and wakes
 * the service thread with lws_cancel_service(), the one cross-thread
 * call libwebsockets documents.  Step messages are coalesced per run to
 * a few a second (a non-finite step is never dropped); alert and run
 * messages all go out.  A slow client never slows ingest or other
 * viewers: its queue is bounded, and one that falls too far behind is
 * told so and resynchronised, or closed.
 */
#ifndef GW_WS_STREAM_H
#define GW_WS_STREAM_H

#include <stddef.h>

struct config;
struct ws_stream;

enum ws_stream_kind {
	WS_STREAM_STEP,		/* {"type":"step",...}; coalescable */
	WS_STREAM_STEP_NONFINITE, /* a step with a non-finite value; never dropped */
	WS_STREAM_ALERT,	/* {"type":"alert","alert":{...}} */
	WS_STREAM_RUN		/* {"type":"run","run":{...}} */
};

/*
 * Listen on cfg->ws_host:ws_port (subprotocol "gradwatch.v1"), checking
 * the token and the Origin as cfg says.  NULL with *cause on failure.
 */
struct ws_stream	*ws_stream_start(const struct config *cfg, char **cause);
/* Close every client and join the service thread.  NULL is fine. */
void			 ws_stream_stop(struct ws_stream *ws);
/*
 * Any thread: send json (len bytes, copied) to the clients subscribed
 * to run (or to "*").  Never blocks on the network.
 */
void			 ws_stream_publish(struct ws_stream *ws,
			    enum ws_stream_kind kind, const char *run,
			    const char *json, size_t len);
/*
 * A message built only if it is sent: build (on the service thread, at
 * most once) returns its JSON, malloc'd, and its length.  Takes
 * ownership of arg, freed with free_arg on whichever thread drops it;
 * size is about the JSON's length (for the inbox's bound).  Publishing
 * costs the caller no JSON for the step messages that coalescing drops.
 */
typedef char	*(*ws_stream_build_cb)(void *arg, size_t *len);
typedef void	 (*ws_stream_free_cb)(void *arg);
void			 ws_stream_publish_lazy(struct ws_stream *ws,
			    enum ws_stream_kind kind, const char *run,
			    void *arg, size_t size, ws_stream_build_cb build,
			    ws_stream_free_cb free_arg);
/* Clients connected now. */
size_t			 ws_stream_clients(struct ws_stream *ws);

#endif
