/* SPDX-License-Identifier: MIT */
/*
 * transport: HTTP for the sender, over libcurl.  One easy handle, reused,
 * inside a multi handle whose connection cache keeps the one connection
 * to the daemon alive between requests.  The sender thread alone posts;
 * any thread may interrupt it with gw__transport_wakeup() (a closing
 * handle whose deadline came), which is why this drives the multi
 * interface instead of curl_easy_perform().  Also what an answer means:
 * a refusal or worth a retry, after how long, and its words for people.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

#define GW__REPLY_MAX	((size_t)1 << 20)	/* keep at most this much */

struct gw__transport {
	CURLM			*multi;
	CURL			*easy;
	struct curl_slist	*headers;
	char			*body;		/* the answer, NUL-terminated */
	size_t			 len;
	size_t			 cap;
	int			 tls;		/* a request may have used TLS */
	char			 errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t	gw__curl_once = PTHREAD_ONCE_INIT;
static int		gw__curl_ok;

/* Never cleaned up: the library cannot know that nobody else uses curl. */
static void
gw__curl_init(void)
{
	gw__curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

static size_t
gw__transport_write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct gw__transport	*tr = arg;
	size_t			 len = size * n, want;
	char			*p;

	if (tr->len + len + 1 > tr->cap && tr->len < GW__REPLY_MAX) {
		want = tr->cap == 0 ? 4096 : tr->cap;
		while (want < tr->len + len + 1 && want < GW__REPLY_MAX + 1)
			want *= 2;
		if ((p = realloc(tr->body, want)) != NULL) {
			tr->body = p;
			tr->cap = want;
		}
	}
	if (tr->len + len + 1 <= tr->cap) {
		memcpy(tr->body + tr->len, data, len);
		tr->len += len;
		tr->body[tr->len] = '\0';
	}
	return len;		/* the rest of a huge answer is ignored */
}

struct gw__transport *
gw__transport_new(const char *auth)
{
	struct gw__transport	*tr;
	struct curl_slist	*h;

	pthread_once(&gw__curl_once, gw__curl_init);
	if (!gw__curl_ok)
		return NULL;
	if ((tr = calloc(1, sizeof *tr)) == NULL)
		return NULL;
	if ((tr->multi = curl_multi_init()) == NULL ||
	    (tr->easy = curl_easy_init()) == NULL)
		goto fail;
	if ((h = curl_slist_append(NULL,
	    "Content-Type: application/json")) == NULL)
		goto fail;
	tr->headers = h;
	/* No "Expect: 100-continue" round trip for large bodies. */
	if ((h = curl_slist_append(tr->headers, "Expect:")) == NULL)
		goto fail;
	tr->headers = h;
	if (auth != NULL) {
		if ((h = curl_slist_append(tr->headers, auth)) == NULL)
			goto fail;
		tr->headers = h;
	}
	curl_easy_setopt(tr->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(tr->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(tr->easy, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(tr->easy, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(tr->easy, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(tr->easy, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)GW__CONNECT_TIMEOUT_MS);
	curl_easy_setopt(tr->easy, CURLOPT_HTTPHEADER, tr->headers);
	curl_easy_setopt(tr->easy, CURLOPT_WRITEFUNCTION,
	    gw__transport_write_cb);
	curl_easy_setopt(tr->easy, CURLOPT_WRITEDATA, tr);
	curl_easy_setopt(tr->easy, CURLOPT_ERRORBUFFER, tr->errbuf);
	curl_easy_setopt(tr->easy, CURLOPT_USERAGENT, "libgradwatch/"
	    GW_VERSION);
	curl_easy_setopt(tr->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(tr->easy, CURLOPT_PROTOCOLS_STR, "http,https");
#if LIBCURL_VERSION_NUM >= 0x075700
	/* Never wait for a slow name lookup's thread when closing. */
	curl_easy_setopt(tr->easy, CURLOPT_QUICK_EXIT, 1L);
#endif
	curl_multi_setopt(tr->multi, CURLMOPT_MAXCONNECTS, 1L);
	return tr;

fail:
	gw__transport_free(tr);
	return NULL;
}

void
gw__transport_free(struct gw__transport *tr)
{
	if (tr == NULL)
		return;
	if (tr->easy != NULL)
		curl_easy_cleanup(tr->easy);
	if (tr->multi != NULL)
		curl_multi_cleanup(tr->multi);
	curl_slist_free_all(tr->headers);
	free(tr->body);
	free(tr);
}

void
gw__transport_forget(struct gw__transport *tr)
{
	if (tr == NULL || tr->tls)
		return;
	/*
	 * Plain HTTP: no TLS library is called, the easy handle is in no
	 * multi, and closing the kept connection closes this process's
	 * descriptor only (the parent's stays open and keeps it alive).
	 */
	gw__transport_free(tr);
}

/*
 * 1 if a request to url may go over TLS: an https URL, or a proxy from
 * the environment (libcurl reads the same variables, on this thread, for
 * each transfer), which may be an https one.
 */
static int
gw__transport_may_tls(const char *url)
{
	static const char *const vars[] = { "http_proxy", "HTTP_PROXY",
	    "all_proxy", "ALL_PROXY" };
	const char	*v;
	size_t		 i;

	if (strncasecmp(url, "http://", 7) != 0)
		return 1;
	for (i = 0; i < sizeof vars / sizeof vars[0]; i++)
		if ((v = getenv(vars[i])) != NULL && v[0] != '\0')
			return 1;
	return 0;
}

void
gw__transport_wakeup(struct gw__transport *tr)
{
	if (tr != NULL && tr->multi != NULL)
		curl_multi_wakeup(tr->multi);
}

int
gw__transport_post(struct gw__transport *tr, const char *url,
    const char *body, size_t len, _Atomic int64_t *deadline,
    int (*idle_cb)(void *), void *arg, struct gw__reply *out)
{
	struct CURLMsg	*msg;
	CURLcode	 code = CURLE_OK;
	curl_off_t	 ra = -1, up = 0;
	int64_t		 now, left, end;
	int		 running = 1, nmsg, done = 0;
	long		 timeout;

	memset(out, 0, sizeof *out);
	out->retry_after_ms = -1;
	if (!tr->tls && gw__transport_may_tls(url))
		tr->tls = 1;		/* for gw__transport_forget */
	tr->len = 0;
	if (tr->body != NULL)
		tr->body[0] = '\0';
	tr->errbuf[0] = '\0';

	now = gw__now_ms();
	end = atomic_load(deadline);
	timeout = GW__REQ_TIMEOUT_MS;
	if (end != INT64_MAX && end - now < timeout)
		timeout = end - now > 1 ? (long)(end - now) : 1;
	curl_easy_setopt(tr->easy, CURLOPT_URL, url);
	curl_easy_setopt(tr->easy, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)len);
	curl_easy_setopt(tr->easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(tr->easy, CURLOPT_TIMEOUT_MS, timeout);
	if (curl_multi_add_handle(tr->multi, tr->easy) != CURLM_OK) {
		snprintf(out->error, sizeof out->error, "curl_multi_add_handle "
		    "failed");
		return 0;
	}
	while (!done) {
		if (curl_multi_perform(tr->multi, &running) != CURLM_OK)
			break;
		while ((msg = curl_multi_info_read(tr->multi, &nmsg)) != NULL)
			if (msg->msg == CURLMSG_DONE) {
				code = msg->data.result;
				done = 1;
			}
		if (done || running == 0)
			break;
		if (idle_cb != NULL && curl_easy_getinfo(tr->easy,
		    CURLINFO_SIZE_UPLOAD_T, &up) == CURLE_OK &&
		    up >= (curl_off_t)len) {
			/* Sent; the answer comes after the daemon's commit. */
			if (idle_cb(arg))
				idle_cb = NULL;
			continue;
		}
		now = gw__now_ms();
		end = atomic_load(deadline);
		if (now >= end) {
			out->aborted = 1;
			break;
		}
		left = end - now;
		curl_multi_poll(tr->multi, NULL, 0, left < 1000 ? (int)left :
		    1000, NULL);
	}
	if (done && code == CURLE_OK) {
		curl_easy_getinfo(tr->easy, CURLINFO_RESPONSE_CODE,
		    &out->status);
		if (curl_easy_getinfo(tr->easy, CURLINFO_RETRY_AFTER, &ra) ==
		    CURLE_OK && ra >= 0)
			out->retry_after_ms = ra > GW__RETRY_AFTER_MAX_MS / 1000 ?
			    GW__RETRY_AFTER_MAX_MS : (long)ra * 1000;
	} else if (out->aborted)
		snprintf(out->error, sizeof out->error, "gave up at the "
		    "close deadline");
	else if (done)
		snprintf(out->error, sizeof out->error, "%s",
		    tr->errbuf[0] != '\0' ? tr->errbuf :
		    curl_easy_strerror(code));
	else
		snprintf(out->error, sizeof out->error, "transfer failed");
	/* Removing a handle mid-transfer closes that connection. */
	curl_multi_remove_handle(tr->multi, tr->easy);
	out->body = tr->body != NULL ? tr->body : "";
	out->len = tr->len;
	return 0;
}

int
gw__reply_is_refusal(long status)
{
	return status != 0 && status != 408 && status != 429 && status < 500;
}

int64_t
gw__backoff_ms(int attempts, long retry_after_ms, uint64_t rnd)
{
	int64_t	base, delay;

	base = (int64_t)GW__BACKOFF_MIN_MS << (attempts < 8 ? attempts - 1 : 7);
	if (base > GW__BACKOFF_MAX_MS)
		base = GW__BACKOFF_MAX_MS;
	delay = base / 2 + (int64_t)(rnd % (uint64_t)(base / 2 + 1));
	if (retry_after_ms > delay)
		delay = retry_after_ms + (int64_t)((rnd >> 32) %
		    (uint64_t)(retry_after_ms / 10 + 1));
	return delay;
}

void
gw__reply_text(const struct gw__reply *r, char *out, size_t size)
{
	json_t	*root;

	root = json_loadb(r->body, r->len, 0, NULL);
	if (root != NULL &&
	    json_is_string(json_object_get(root, WIRE_MESSAGE_KEY)))
		snprintf(out, size, "%s: %s",
		    json_is_string(json_object_get(root, WIRE_ERROR_KEY)) ?
		    json_string_value(json_object_get(root, WIRE_ERROR_KEY)) :
		    "error",
		    json_string_value(json_object_get(root, WIRE_MESSAGE_KEY)));
	else
		snprintf(out, size, "%.120s", r->len > 0 ? r->body : "no body");
	json_decref(root);
}
