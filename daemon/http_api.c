/* SPDX-License-Identifier: MIT */
/*
 * http_api: routes API.md's requests on libmicrohttpd.  MHD threads own
 * struct request (made on the first call, freed at NOTIFY_COMPLETED):
 * they collect the body, route, and either answer at once (cheap
 * routes), stream (exports), or suspend the connection and hand the
 * request to a worker (parsing, queries), which may hand it on to
 * the writer (ingest).  Whoever finishes fills req->reply and resumes
 * the connection; MHD then calls us again and we queue the response.
 */
#include <errno.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "auth.h"
#include "config.h"
#include "http_api.h"
#include "http_guard.h"
#include "http_route.h"
#include "ingest.h"
#include "jsonarena.h"
#include "log.h"
#include "metrics.h"
#include "now.h"
#include "pool.h"
#include "query.h"
#include "runmeta.h"
#include "store.h"
#include "wire.h"
#include "wire_json.h"
#include "writer.h"
#include "xmalloc.h"

#define HTTP_POOL_JOBS		1024	/* parse and query jobs waiting */
#define HTTP_POOL_BYTES		(256 * 1024) /* a connection's buffers */
#define HTTP_STR_(x)		#x
#define HTTP_STR(x)		HTTP_STR_(x)
#define HTTP_EXPORT_BLOCK	(64 * 1024)
#define HTTP_VERSION		"0.1.0"
#define HTTP_ACTIVE_S		86400.0	/* /metrics: runs seen this recently */

struct http {
	const struct config	*cfg;
	struct writer		*writer;
	struct pool		*parsers;	/* ingest bodies; no database */
	struct pool		*readers;	/* queries; a connection each */
	struct MHD_Daemon	*mhd;
	struct http_hooks	 hooks;
	uint16_t		 port;
	_Atomic long		 in_flight;	/* dispatched, answer not yet sent */
	_Atomic int		 stopping;	/* http_stop began: suspend nothing */
};

/* One request; owned by its MHD thread except while dispatched. */
struct request {
	struct http		*h;
	struct MHD_Connection	*conn;
	enum http_route		 route;
	char			*run;		/* {run} of the path */
	char			*params[P_COUNT];
	char			*body;
	size_t			 len;
	size_t			 cap;
	int			 begun;		/* http_begin ran */
	int			 too_large;
	int			 too_many_params; /* query cut (http_uri_cb) */
	int			 dispatched;
	int			 ready;		/* reply filled by a worker */
	struct pool_job		 pjob;
	struct writer_job	 wjob;
	struct runmeta		 meta;		/* ROUTE_RUN_PATCH's body */
	unsigned int		 status;	/* reply, once ready */
	char			*reply;
	const char		*reply_type;	/* NULL: JSON */
	int			 retry_after;
};

/* Queue a response with body (taken over) and free it after sending. */
static enum MHD_Result
http_reply(struct request *req, unsigned int status, char *body,
    const char *type)
{
	struct MHD_Response	*resp;
	enum MHD_Result		 r;
	char			 retry[16];

	resp = MHD_create_response_from_buffer_with_free_callback(strlen(body),
	    body, free);
	if (resp == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-store");
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE) {
		snprintf(retry, sizeof retry, "%d",
		    req->retry_after > 0 ? req->retry_after : 1);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER,
		    retry);
	}
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp,
		    MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
		    req->route == ROUTE_INGEST || req->route == ROUTE_FINISH ?
		    "POST" : req->route == ROUTE_RUN ? "GET, HEAD, PATCH" :
		    "GET, HEAD");
	r = MHD_queue_response(req->conn, status, resp);
	MHD_destroy_response(resp);	/* MHD keeps its own reference */
	metrics_request(http_metrics_route(req->route), status);
	return r;
}

static enum MHD_Result
http_json(struct request *req, unsigned int status, char *body)
{
	return http_reply(req, status, body, "application/json");
}

/* Answer now with the error code (and its status) and message. */
static enum MHD_Result
http_error(struct request *req, const char *code, const char *message)
{
	return http_json(req, wire_status(code),
	    wire_error_body(code, message));
}

/* Worker or writer thread: the reply is ready; wake the MHD thread. */
static void
http_resume(struct request *req, unsigned int status, char *body)
{
	req->status = status;
	req->reply = body;
	req->ready = 1;
	MHD_resume_connection(req->conn);	/* req may be freed after this */
}

/* Worker or writer thread: the reply is the error code and message. */
static void
http_resume_error(struct request *req, const char *code, const char *message)
{
	http_resume(req, wire_status(code), wire_error_body(code, message));
}

/* The request's bearer token, if one is configured (auth.h). */
static int
http_is_authorized(struct http *h, struct MHD_Connection *conn)
{
	return auth_bearer_ok(MHD_lookup_connection_value(conn,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION), h->cfg->token);
}

/* ---- worker jobs ------------------------------------------------------- */

/* Writer thread: the ingest or finish job is committed (or failed). */
static void
http_writer_done_cb(struct writer_job *job, void *arg)
{
	struct request	*req = arg;
	char		*body = job->body;

	job->body = NULL;	/* before the resume: req may be gone after it */
	http_resume(req, job->status, body);
}

static void
http_submit_writer(struct request *req)
{
	struct writer_job	*job = &req->wjob;

	job->received_at = now_wall();
	job->done = http_writer_done_cb;
	job->done_arg = req;
	if (writer_submit(req->h->writer, job) == -1) {
		batch_free(job->batch);
		job->batch = NULL;
		req->retry_after = 1;
		http_resume_error(req, "overloaded",
		    "the writer is behind; retry after the Retry-After delay");
	}
}

/* Worker: parse an ingest or finish body, then queue it for the writer. */
static void
http_post_job(struct request *req)
{
	const char	*code = NULL, *status;
	char		*cause = NULL;

	metrics_bytes_in(req->len);
	memset(&req->wjob, 0, sizeof req->wjob);
	if (req->route == ROUTE_INGEST) {
		req->wjob.kind = WRITER_JOB_INGEST;
		req->wjob.batch = ingest_parse_fast(req->body, req->len);
		if (req->wjob.batch != NULL)
			metrics_fast_parse();
		else {
			jsonarena_begin();	/* it keeps no json_t */
			req->wjob.batch = ingest_parse_tree(req->body,
			    req->len, req->h->cfg->max_meta_config, &code,
			    &cause);
			jsonarena_end();
		}
		if (req->wjob.batch == NULL)
			goto bad;
	} else if (req->route == ROUTE_RUN_PATCH) {
		if (runmeta_parse(req->body, req->len, &req->meta, &code,
		    &cause) == -1)
			goto bad;
		req->wjob.kind = WRITER_JOB_ANNOTATE;
		req->wjob.run = req->run;
		req->wjob.tags = req->meta.tags;
		req->wjob.note = req->meta.note;
	} else {
		status = ingest_parse_finish(req->body, req->len, &code,
		    &cause);
		if (status == NULL)
			goto bad;
		req->wjob.kind = WRITER_JOB_FINISH;
		req->wjob.run = req->run;
		req->wjob.finish_status = status;
	}
	free(req->body);
	req->body = NULL;
	http_submit_writer(req);
	return;
bad:
	http_resume_error(req, code, cause);
	free(cause);
}

/* Worker: run a read-only query on this worker's connection. */
static void
http_query_job(struct query *q, struct request *req)
{
	struct query_reply	 r = { 0, NULL };
	char		**p = req->params;

	switch (req->route) {
	case ROUTE_RUNS:
		query_runs(q, p[P_PROJECT], p[P_STATUS], p[P_CONFIG], &r);
		break;
	case ROUTE_RUN:
		query_run(q, req->run, &r);
		break;
	case ROUTE_POINTS:
		query_points(q, req->run, p[P_SERIES], p[P_FROM], p[P_TO],
		    p[P_MAX], &r);
		break;
	case ROUTE_HEATMAP:
		query_heatmap(q, req->run, p[P_FROM], p[P_TO], p[P_BUCKETS],
		    &r);
		break;
	case ROUTE_ALERTS:
		query_alerts(q, p[P_RUN], p[P_STATE], p[P_SINCE], &r);
		break;
	default:
		r.status = wire_status("internal");
		r.body = wire_error_body("internal", "unroutable query");
		break;
	}
	http_resume(req, r.status, r.body);
}

/*
 * Worker: GET /metrics, the counters and the database's gauges (without
 * them when q is NULL: an in-memory database has no reader).
 */
static void
http_metrics_job(struct query *q, struct request *req)
{
	struct http		*h = req->h;
	struct query_reply	 r = { 0, NULL };
	size_t			 viewers = 0;
	char			*base, *extra = NULL, *all;

	if (h->hooks.stream_clients != NULL)
		viewers = h->hooks.stream_clients(h->hooks.arg);
	base = metrics_render(writer_queue_depth(h->writer), viewers);
	if (h->hooks.metrics_extra != NULL)
		extra = h->hooks.metrics_extra(h->hooks.arg);
	if (q != NULL) {
		query_gauges(q, now_wall() - HTTP_ACTIVE_S, &r);
		if (r.status != 200) {
			log_warnx("http: metrics: %s", r.body);
			free(r.body);
			r.body = NULL;
		}
	}
	xasprintf(&all, "%s%s%s", base, extra != NULL ? extra : "",
	    r.body != NULL ? r.body : "");
	free(base);
	free(extra);
	free(r.body);
	req->reply_type = "text/plain; version=0.0.4; charset=utf-8";
	http_resume(req, MHD_HTTP_OK, all);
}

static void
http_job_cb(void *state, void *arg)
{
	struct query	*q = state;
	struct request	*req = arg;

	if (http_route_is_post(req->route)) {
		http_post_job(req);
		return;
	}
	if (req->route == ROUTE_METRICS) {
		http_metrics_job(q, req);
		return;
	}
	if (q == NULL) {
		http_resume_error(req, "internal", "no database connection "
		    "for queries (see the daemon's log)");
		return;
	}
	http_query_job(q, req);
}

static void *
http_worker_init_cb(void *ctx)
{
	struct http	*h = ctx;
	struct query	*q;
	char		*cause = NULL;

	q = query_open(h->cfg->db_path, &cause);
	if (q == NULL) {
		log_warnx("http: worker: %s", cause);
		free(cause);
	}
	return q;
}

static void
http_worker_fini_cb(void *state)
{
	query_close(state);
}

static void
http_parser_fini_cb(void *state)
{
	(void)state;
	jsonarena_release();
}

/* Suspend the connection and give req to a worker. */
static enum MHD_Result
http_dispatch(struct request *req)
{
	req->pjob.run = http_job_cb;
	req->pjob.arg = req;
	/*
	 * MHD_stop_daemon() aborts the process if a connection is suspended,
	 * so once http_stop() began (a keep-alive client may still send) the
	 * answer is given here.  Count first, then look: http_stop() sets the
	 * flag, then reads the count, so one of the two sees the other.
	 */
	atomic_fetch_add(&req->h->in_flight, 1);
	if (atomic_load(&req->h->stopping)) {
		atomic_fetch_sub(&req->h->in_flight, 1);
		req->retry_after = 1;
		return http_error(req, "overloaded",
		    "the daemon is shutting down; retry later");
	}
	req->dispatched = 1;
	MHD_suspend_connection(req->conn);
	/* Separate pools: slow queries never hold up ingest parsing. */
	if (pool_submit(http_route_is_post(req->route) ? req->h->parsers :
	    req->h->readers, &req->pjob) == -1) {
		req->retry_after = 1;
		http_resume_error(req, "overloaded",
		    "too many requests in progress; retry later");
	}
	return MHD_YES;
}

/* ---- routes answered on the MHD thread -------------------------------- */

static ssize_t
http_export_read_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	ssize_t	n;

	(void)pos;
	n = query_export_read(cls, buf, max);
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return n;
}

static void
http_export_free_cb(void *cls)
{
	query_export_close(cls);
}

static enum MHD_Result
http_export(struct request *req)
{
	struct query_export	*x;
	struct query_reply	 r = { 0, NULL };
	struct MHD_Response	*resp;
	enum MHD_Result		 ret;

	x = query_export_open(req->h->cfg->db_path, req->run,
	    req->params[P_FORMAT], &r);
	if (x == NULL)
		return http_json(req, r.status, r.body);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
	    HTTP_EXPORT_BLOCK, http_export_read_cb, x, http_export_free_cb);
	if (resp == NULL) {
		query_export_close(x);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    query_export_content_type(x));
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-store");
	ret = MHD_queue_response(req->conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	metrics_request(METRICS_ROUTE_EXPORT, MHD_HTTP_OK);
	return ret;
}

static enum MHD_Result
http_info(struct request *req)
{
	const struct config	*cfg = req->h->cfg;
	json_t			*o;
	char			*s;

	o = json_pack("{s:s, s:i, s:b, s:i}", "version", HTTP_VERSION,
	    "stream_port", (int)cfg->ws_port, "auth", cfg->token != NULL,
	    "schema_version", store_schema_version());
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		fatalx("http: json_dumps failed");
	return http_json(req, MHD_HTTP_OK, s);
}

static enum MHD_Result
http_static(struct request *req, const char *url)
{
	struct http		*h = req->h;
	struct MHD_Response	*resp;
	const void		*body;
	const char		*type;
	size_t			 len;
	enum MHD_Result		 r;

	if (h->hooks.static_file == NULL ||
	    h->hooks.static_file(h->hooks.arg, url, &body, &len, &type) == -1)
		return http_error(req, "not_found", "no such path");
	resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
	    MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	/* Revalidate each time: the files change with the daemon's version. */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	r = MHD_queue_response(req->conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	metrics_request(METRICS_ROUTE_STATIC, MHD_HTTP_OK);
	return r;
}

static void
http_copy_params(struct request *req)
{
	const char	*v;
	int		 i;

	for (i = 0; i < P_COUNT; i++) {
		v = MHD_lookup_connection_value(req->conn,
		    MHD_GET_ARGUMENT_KIND, http_param_names[i]);
		req->params[i] = v == NULL ? NULL : xstrdup(v);
	}
}

/* The whole request is here: route it. */
static enum MHD_Result
http_route(struct request *req, const char *url, const char *method)
{
	int	is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
		    strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	int	is_post = strcmp(method, req->route == ROUTE_RUN_PATCH ?
		    "PATCH" : MHD_HTTP_METHOD_POST) == 0;

	if (req->route == ROUTE_NONE) {
		if (is_get && strncmp(url, "/api/", 5) != 0)
			return http_static(req, url);
		return http_error(req, "not_found", "no such path");
	}
	if (http_route_is_post(req->route) ? !is_post : !is_get)
		/* The one status its code does not give (API.md). */
		return http_json(req, MHD_HTTP_METHOD_NOT_ALLOWED,
		    wire_error_body("bad_request",
		    "method not allowed for this path"));
	if (req->run != NULL && !wire_is_run_key(req->run))
		return http_error(req, "bad_request",
		    "run: expected 1 to 128 characters of [A-Za-z0-9._:-]");
	if (req->too_large)
		return http_error(req, "too_large",
		    "request body over the limit");
	switch (req->route) {
	case ROUTE_HEALTHZ:
		return http_json(req, MHD_HTTP_OK, xstrdup("{\"ok\":true}"));
	case ROUTE_INFO:
		return http_info(req);
	case ROUTE_EXPORT:
		http_copy_params(req);
		return http_export(req);
	default:
		http_copy_params(req);
		return http_dispatch(req);
	}
}

/* First call for a request: make its state and check what we can early. */
static enum MHD_Result
http_begin(struct http *h, struct MHD_Connection *conn, const char *url,
    const char *method, void **con_cls)
{
	struct request	*req = *con_cls;	/* from http_uri_cb */
	const char	*cl, *code, *message;
	unsigned long long len;

	req->begun = 1;
	req->conn = conn;
	req->route = http_route_path(url, &req->run);
	if (req->route == ROUTE_RUN && strcmp(method, "PATCH") == 0)
		req->route = ROUTE_RUN_PATCH;
	if (req->route != ROUTE_HEALTHZ && (code = http_guard_browser(conn,
	    h->cfg, strcmp(method, MHD_HTTP_METHOD_POST) == 0 ||
	    req->route == ROUTE_RUN_PATCH, &message)) != NULL)
		return http_error(req, code, message);
	/*
	 * The dashboard's files are public (a browser cannot send a bearer
	 * token when it navigates); the page then asks for the token and
	 * sends it with every API request.
	 */
	if (req->route != ROUTE_HEALTHZ && !http_is_static(req->route, url) &&
	    !http_is_authorized(h, conn))
		return http_error(req, "unauthorized",
		    "missing or wrong 'Authorization: Bearer <token>'");
	if (req->too_many_params)
		return http_error(req, "bad_request",
		    "too many query parameters (at most "
		    HTTP_STR(HTTP_GUARD_QUERY_PARAMS_MAX) ")");
	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL && (len = strtoull(cl, NULL, 10)) > h->cfg->max_body)
		return http_error(req, "too_large",
		    "request body over the limit");
	return MHD_YES;
}

/*
 * MHD_OPTION_URI_LOG_CALLBACK: the request's state, made when its first
 * line is read, before libmicrohttpd splits the query into the
 * connection's pool.  Thousands of parameters exhaust the pool, and
 * libmicrohttpd 0.9.75 then logs a 431 it never sends (the client waits
 * for idle-timeout); so too long a query is cut here, in libmicrohttpd's
 * own writable buffer (it calls this "before we modify URI or args"),
 * and answered 400 by http_begin.
 */
static void *
http_uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct request	*req;
	char		*writable;

	req = xcalloc(1, sizeof *req);
	req->h = cls;
	req->conn = conn;
	memcpy(&writable, &uri, sizeof writable);	/* see above */
	req->too_many_params = http_guard_cut_query(writable);
	return req;
}

static enum MHD_Result
http_access_cb(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct http	*h = cls;
	struct request	*req = *con_cls;
	size_t		 n = *upload_data_size;

	(void)version;
	if (!req->begun)
		return http_begin(h, conn, url, method, con_cls);
	if (req->ready) {
		char	*reply = req->reply;

		req->ready = 0;
		req->reply = NULL;	/* http_reply takes it over */
		return http_reply(req, req->status, reply,
		    req->reply_type != NULL ? req->reply_type :
		    "application/json");
	}
	if (req->dispatched)	/* spurious call while suspended */
		return MHD_YES;
	if (n != 0) {
		if (req->too_large || req->len + n > h->cfg->max_body) {
			req->too_large = 1;
			free(req->body);
			req->body = NULL;
			req->len = req->cap = 0;
		} else {
			if (req->len + n > req->cap) {
				req->cap = req->cap == 0 ? 64 * 1024 : req->cap;
				while (req->cap < req->len + n)
					req->cap *= 2;
				req->body = xreallocarray(req->body, 1, req->cap);
			}
			memcpy(req->body + req->len, upload_data, n);
			req->len += n;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	return http_route(req, url, method);
}

static void
http_completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct request	*req = *con_cls;
	int		 i;

	(void)cls;
	(void)conn;
	(void)toe;
	if (req == NULL)
		return;
	if (req->dispatched)	/* its answer is sent (or the peer left) */
		atomic_fetch_sub(&req->h->in_flight, 1);
	batch_free(req->wjob.batch);
	free(req->wjob.body);
	runmeta_cleanup(&req->meta);
	for (i = 0; i < P_COUNT; i++)
		free(req->params[i]);
	free(req->run);
	free(req->body);
	free(req->reply);
	free(req);
	*con_cls = NULL;
}

static void
http_log_cb(void *cls, const char *fmt, va_list ap)
{
	char	buf[512];
	size_t	n;

	(void)cls;
	vsnprintf(buf, sizeof buf, fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '.'))
		buf[--n] = '\0';
	log_debug("http: mhd: %s", buf);
}

struct http *
http_start(const struct config *cfg, struct writer *w,
    const struct http_hooks *hooks, char **cause)
{
	struct http		*h;
	struct addrinfo		 hints, *res = NULL;
	char			 port[8];
	const union MHD_DaemonInfo *info;
	int			 rc;

	h = xcalloc(1, sizeof *h);
	h->cfg = cfg;
	h->writer = w;
	if (hooks != NULL)
		h->hooks = *hooks;
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof port, "%u", cfg->http_port);
	if ((rc = getaddrinfo(cfg->http_host, port, &hints, &res)) != 0) {
		xasprintf(cause, "http: %s: %s", cfg->http_host,
		    gai_strerror(rc));
		goto fail;
	}
	h->parsers = pool_start(cfg->workers, HTTP_POOL_JOBS, NULL,
	    http_parser_fini_cb, NULL);
	h->readers = pool_start(cfg->workers, HTTP_POOL_JOBS, http_worker_init_cb,
	    http_worker_fini_cb, h);
	h->mhd = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
	    (res->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0),
	    0, NULL, NULL, http_access_cb, h,
	    MHD_OPTION_SOCK_ADDR, res->ai_addr,
	    MHD_OPTION_THREAD_POOL_SIZE, cfg->http_threads,
	    MHD_OPTION_NOTIFY_COMPLETED, http_completed_cb, h,
	    MHD_OPTION_EXTERNAL_LOGGER, http_log_cb, h,
	    MHD_OPTION_CONNECTION_LIMIT, http_guard_connection_limit(cfg),
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned int)cfg->max_connections_per_ip,
	    MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout,
	    MHD_OPTION_URI_LOG_CALLBACK, http_uri_cb, h,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_POOL_BYTES,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, 256u,
	    MHD_OPTION_END);
	freeaddrinfo(res);
	if (h->mhd == NULL) {
		xasprintf(cause, "http: cannot listen on %s:%u: %s",
		    cfg->http_host, cfg->http_port, strerror(errno));
		goto fail;
	}
	info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info != NULL ? info->port : cfg->http_port;
	return h;
fail:
	pool_free(h->parsers);
	pool_free(h->readers);
	free(h);
	return NULL;
}

uint16_t
http_port(struct http *h)
{
	return h->port;
}

void
http_quiesce(struct http *h)
{
	MHD_socket	fd;

	fd = MHD_quiesce_daemon(h->mhd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
}

void
http_drain(struct http *h)
{
	pool_stop(h->parsers);	/* later submits answer 503 */
}

void
http_stop(struct http *h, int timeout_ms)
{
	int	waited = 0;

	if (h == NULL)
		return;
	/* Every dispatched request's answer is written out before we stop. */
	atomic_store(&h->stopping, 1);
	while (atomic_load(&h->in_flight) > 0 && waited < timeout_ms) {
		usleep(5 * 1000);
		waited += 5;
	}
	if (atomic_load(&h->in_flight) > 0) {
		/* A suspended connection would make MHD abort: leave MHD be. */
		log_warnx("http: %ld requests still unanswered after %d ms; "
		    "their connections close at exit",
		    (long)atomic_load(&h->in_flight), timeout_ms);
		return;
	}
	MHD_stop_daemon(h->mhd);
	pool_free(h->parsers);
	pool_free(h->readers);
	free(h);
}
