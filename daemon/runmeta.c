/* SPDX-License-Identifier: MIT */
/*
 * runmeta: checks the body of PATCH /api/v1/runs/{run} and makes the
 * stored forms of a run's tags and note (see runmeta.h).  Every refusal
 * names the part at fault and the limit, so a person can fix the
 * request.  Pure; any thread (the parser pool's, in the daemon).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "runmeta.h"
#include "xmalloc.h"

/* 1 if s (n bytes) holds a control character (tabs and newlines too). */
static int
runmeta_has_control(const char *s, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 1;
	return 0;
}

/* The tags in v as a compact JSON array, or NULL with *cause. */
static char *
runmeta_tags(json_t *v, char **cause)
{
	json_t		*t, *u;
	char		*out;
	const char	*s;
	size_t		 i, j, n;

	if (json_is_null(v))
		return xstrdup("[]");
	if (!json_is_array(v)) {
		xasprintf(cause, "tags: expected an array of strings");
		return NULL;
	}
	if (json_array_size(v) > RUNMETA_TAGS_MAX) {
		xasprintf(cause, "tags: %zu tags, over the limit of %d",
		    json_array_size(v), RUNMETA_TAGS_MAX);
		return NULL;
	}
	json_array_foreach(v, i, t) {
		if (!json_is_string(t)) {
			xasprintf(cause, "tags[%zu]: expected a string", i);
			return NULL;
		}
		s = json_string_value(t);
		n = json_string_length(t);
		if (n == 0 || n > RUNMETA_TAG_BYTES) {
			xasprintf(cause, "tags[%zu]: expected 1 to %d bytes, "
			    "got %zu", i, RUNMETA_TAG_BYTES, n);
			return NULL;
		}
		if (runmeta_has_control(s, n)) {
			xasprintf(cause, "tags[%zu]: control characters are "
			    "not allowed in a tag", i);
			return NULL;
		}
		for (j = 0; j < i; j++) {
			u = json_array_get(v, j);
			if (json_equal(t, u)) {
				xasprintf(cause, "tags[%zu]: the same tag as "
				    "tags[%zu]", i, j);
				return NULL;
			}
		}
	}
	if ((out = json_dumps(v, JSON_COMPACT)) == NULL)
		fatalx("runmeta: json_dumps failed");
	return out;
}

/* The note in v, or NULL with *cause. */
static char *
runmeta_note(json_t *v, char **cause)
{
	if (json_is_null(v))
		return xstrdup("");
	if (!json_is_string(v)) {
		xasprintf(cause, "note: expected a string");
		return NULL;
	}
	if (json_string_length(v) > RUNMETA_NOTE_BYTES) {
		xasprintf(cause, "note: %zu bytes, over the limit of %d",
		    json_string_length(v), RUNMETA_NOTE_BYTES);
		return NULL;
	}
	return xstrdup(json_string_value(v));
}

int
runmeta_parse(const char *body, size_t len, struct runmeta *m,
    const char **code, char **cause)
{
	struct runmeta	 r = { NULL, NULL };
	json_error_t	 err;
	json_t		*root = NULL, *v;
	const char	*key;

	*code = "bad_request";
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
	if (root == NULL) {
		*code = "bad_json";
		xasprintf(cause, "invalid JSON at line %d, column %d: %s",
		    err.line, err.column, err.text);
		goto fail;
	}
	if (!json_is_object(root)) {
		xasprintf(cause, "expected a JSON object at the top level");
		goto fail;
	}
	json_object_foreach(root, key, v) {
		if (strcmp(key, "tags") != 0 && strcmp(key, "note") != 0) {
			xasprintf(cause, "unknown key \"%.64s\" (expected "
			    "\"tags\" or \"note\")", key);
			goto fail;
		}
	}
	if (json_object_size(root) == 0) {
		xasprintf(cause, "expected \"tags\", \"note\" or both");
		goto fail;
	}
	if ((v = json_object_get(root, "tags")) != NULL &&
	    (r.tags = runmeta_tags(v, cause)) == NULL)
		goto fail;
	if ((v = json_object_get(root, "note")) != NULL &&
	    (r.note = runmeta_note(v, cause)) == NULL)
		goto fail;
	json_decref(root);
	*m = r;
	return 0;

fail:
	json_decref(root);
	runmeta_cleanup(&r);
	return -1;
}

void
runmeta_cleanup(struct runmeta *m)
{
	free(m->tags);
	free(m->note);
	m->tags = m->note = NULL;
}
