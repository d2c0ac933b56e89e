/* SPDX-License-Identifier: MIT */
/*
 * ingest: turns the body of POST /api/v1/ingest into a struct batch
 * (API.md, "Ingest").  Jansson builds the tree; one pass over it then
 * validates every part and writes the points straight into the batch's
 * series columns, resolving compact-form layers by index and named
 * series through a hash table local to the call.  Pure and reentrant:
 * any thread may call it and nothing is shared between calls.
 *
 * A body in the shape the client library sends goes through
 * ingest_scan() first, which builds the same batch without a tree; any
 * other body, and every invalid one, is left to the Jansson path here,
 * which alone words the causes.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "batch.h"
#include "ingest.h"
#include "ingest_core.h"
#include "ingest_dump.h"
#include "log.h"
#include "wire.h"
#include "xmalloc.h"

/*
 * Duplicate keys are rejected rather than resolved "last wins": a
 * request must mean one thing.  The check costs one extra lookup per
 * key inside Jansson, which the compact form barely has.
 */
#define INGEST_JSON_FLAGS	JSON_REJECT_DUPLICATES

#define INGEST_VALUE_WANT \
	"expected a number or \"NaN\", \"Infinity\", \"-Infinity\" (or null)"


/* 1 if v, a container at nesting level depth, stays within the limit. */
static int
ingest_depth_ok(json_t *v, int depth)
{
	void	*it;
	size_t	 i, n;

	if (!json_is_object(v) && !json_is_array(v))
		return 1;
	if (depth > INGEST_MAX_DEPTH)
		return 0;
	if (json_is_array(v)) {
		n = json_array_size(v);
		for (i = 0; i < n; i++)
			if (!ingest_depth_ok(json_array_get(v, i), depth + 1))
				return 0;
		return 1;
	}
	for (it = json_object_iter(v); it != NULL;
	    it = json_object_iter_next(v, it))
		if (!ingest_depth_ok(json_object_iter_value(it), depth + 1))
			return 0;
	return 1;
}

/*
 * A point value: 1 with *d set for a number or "NaN", "Infinity",
 * "-Infinity"; 0 for null (no point); -1 for anything else.
 */
static inline int
ingest_value(const json_t *v, double *d)
{
	const char	*s;

	switch (json_typeof(v)) {
	case JSON_REAL:
		*d = json_real_value(v);
		return 1;
	case JSON_INTEGER:
		*d = (double)json_integer_value(v);
		return 1;
	case JSON_NULL:
		return 0;
	case JSON_STRING:
		s = json_string_value(v);
		if (wire_nonfinite_parse(s, json_string_length(v), d))
			return 1;
		return -1;
	default:
		return -1;
	}
}

/* steps[stepi].<field> given as a value: one point of a scalar series. */
static int
ingest_scalar_value(struct ingest *ig, json_t *v, enum series_kind kind,
    const char *path, size_t stepi, int64_t step)
{
	double	d;
	int	r;

	if ((r = ingest_value(v, &d)) < 0)
		return ingest_fail(ig, "steps[%zu].%s: " INGEST_VALUE_WANT,
		    stepi, path);
	if (r == 0)
		return 0;
	return ingest_scalar(ig, kind, stepi, step, d);
}

/* steps[stepi].<field> as an object of series name -> value. */
static int
ingest_named(struct ingest *ig, json_t *obj, enum series_kind kind,
    const char *field, size_t stepi, int64_t step)
{
	char		 q[INGEST_QUOTE_SIZE];
	const char	*key;
	void		*it;
	size_t		 klen, si;
	double		 d;
	int		 r;

	for (it = json_object_iter(obj); it != NULL;
	    it = json_object_iter_next(obj, it)) {
		key = json_object_iter_key(it);
		klen = json_object_iter_key_len(it);
		if (klen == 0 || klen > WIRE_NAME_MAX)
			return ingest_fail(ig, "steps[%zu].%s[%s]: expected a "
			    "series name of 1 to %d bytes", stepi, field,
			    ingest_quote(q, key, klen), WIRE_NAME_MAX);
		r = ingest_value(json_object_iter_value(it), &d);
		if (r == 0)
			continue;
		if (r < 0)
			return ingest_fail(ig, "steps[%zu].%s[%s]: "
			    INGEST_VALUE_WANT, stepi, field,
			    ingest_quote(q, key, klen));
		if ((si = ingest_series(ig, kind, key, klen, stepi)) ==
		    INGEST_NONE)
			return -1;
		ingest_push(ig, si, step, d);
	}
	return 0;
}

/* steps[stepi].<field> as an array aligned with layer_names. */
static int
ingest_aligned(struct ingest *ig, json_t *arr, enum series_kind kind,
    const char *field, size_t stepi, int64_t step)
{
	char	 q[INGEST_QUOTE_SIZE];
	size_t	 i, n, si;
	double	 d;
	int	 r;

	n = json_array_size(arr);
	if (!ig->names_given)
		return ingest_fail(ig, "steps[%zu].%s: an array needs "
		    "\"layer_names\" (or give an object of name -> value)",
		    stepi, field);
	if (n != ig->nnames)
		return ingest_fail(ig, "steps[%zu].%s: expected %zu entries, "
		    "one per layer_names entry, not %zu", stepi, field,
		    ig->nnames, n);
	for (i = 0; i < n; i++) {
		r = ingest_value(json_array_get(arr, i), &d);
		if (r == 0)
			continue;
		if (r < 0)
			return ingest_fail(ig, "steps[%zu].%s[%zu] (%s): "
			    INGEST_VALUE_WANT, stepi, field, i,
			    ingest_quote(q, ig->names[i].s, ig->names[i].len));
		if ((si = ingest_layer_series(ig, kind, i, stepi)) ==
		    INGEST_NONE)
			return -1;
		ingest_push(ig, si, step, d);
	}
	return 0;
}

/* steps[stepi].layers, .weights, .updates or .adam_ratio, in either form. */
static int
ingest_tensors(struct ingest *ig, json_t *v, enum series_kind kind,
    const char *field, size_t stepi, int64_t step)
{
	if (json_is_object(v))
		return ingest_named(ig, v, kind, field, stepi, step);
	if (json_is_array(v))
		return ingest_aligned(ig, v, kind, field, stepi, step);
	if (json_is_null(v))
		return 0;
	return ingest_fail(ig, "steps[%zu].%s: expected an object of name -> "
	    "value, or an array aligned with layer_names", stepi, field);
}

static int
ingest_clip(struct ingest *ig, json_t *clip, size_t stepi, int64_t step)
{
	char		 q[INGEST_QUOTE_SIZE];
	const char	*key;
	void		*it;
	json_t		*v;

	if (json_is_null(clip))
		return 0;
	if (!json_is_object(clip))
		return ingest_fail(ig, "steps[%zu].clip: expected an object "
		    "with \"max_norm\" and \"pre_norm\"", stepi);
	for (it = json_object_iter(clip); it != NULL;
	    it = json_object_iter_next(clip, it)) {
		key = json_object_iter_key(it);
		v = json_object_iter_value(it);
		if (strcmp(key, "max_norm") == 0) {
			if (ingest_scalar_value(ig, v, SERIES_CLIP_MAX_NORM,
			    "clip.max_norm", stepi, step) == -1)
				return -1;
		} else if (strcmp(key, "pre_norm") == 0) {
			if (ingest_scalar_value(ig, v, SERIES_CLIP_PRE_NORM,
			    "clip.pre_norm", stepi, step) == -1)
				return -1;
		} else
			return ingest_fail(ig, "steps[%zu].clip: unknown key %s "
			    "(expected \"max_norm\" or \"pre_norm\")", stepi,
			    ingest_quote(q, key, json_object_iter_key_len(it)));
	}
	return 0;
}

/* Record steps[stepi] and its points. */
static int
ingest_step(struct ingest *ig, json_t *st, size_t stepi)
{
	char		 q[INGEST_QUOTE_SIZE];
	const char	*key;
	json_t		*v;
	void		*it;
	int64_t		 step;
	double		 d;
	int		 rc = 0;

	if (!json_is_object(st))
		return ingest_fail(ig, "steps[%zu]: expected an object",
		    stepi);
	if ((v = json_object_get(st, "step")) == NULL)
		return ingest_fail(ig, "steps[%zu]: missing \"step\"", stepi);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return ingest_fail(ig, "steps[%zu].step: expected a "
		    "non-negative integer", stepi);
	step = json_integer_value(v);
	ig->b->steps[ig->b->nsteps++] = step;

	for (it = json_object_iter(st); it != NULL && rc == 0;
	    it = json_object_iter_next(st, it)) {
		key = json_object_iter_key(it);
		v = json_object_iter_value(it);
		switch (ingest_step_key(key, json_object_iter_key_len(it))) {
		case KEY_STEP:
			break;
		case KEY_TIME:
			if (json_is_null(v))
				break;
			if (!json_is_number(v) || json_number_value(v) < 0)
				return ingest_fail(ig, "steps[%zu].time: "
				    "expected a finite number >= 0 (seconds "
				    "since the epoch)", stepi);
			rc = ingest_scalar(ig, SERIES_TIME, stepi, step,
			    json_number_value(v));
			break;
		case KEY_LOSS:
			rc = ingest_scalar_value(ig, v, SERIES_LOSS, key,
			    stepi, step);
			break;
		case KEY_GRAD_NORM:
			rc = ingest_scalar_value(ig, v, SERIES_GRAD_NORM, key,
			    stepi, step);
			break;
		case KEY_LR:
			rc = ingest_scalar_value(ig, v, SERIES_LR, key, stepi,
			    step);
			break;
		case KEY_LOSS_SCALE:
			rc = ingest_scalar_value(ig, v, SERIES_LOSS_SCALE, key,
			    stepi, step);
			break;
		case KEY_SKIPPED:
			if (json_is_null(v))
				break;
			if (!json_is_boolean(v))
				return ingest_fail(ig, "steps[%zu].skipped: "
				    "expected true, false or null", stepi);
			d = json_is_true(v) ? 1.0 : 0.0;
			rc = ingest_scalar(ig, SERIES_SKIPPED, stepi, step, d);
			break;
		case KEY_LAYERS:
			rc = ingest_tensors(ig, v, SERIES_LAYER_GRAD, key,
			    stepi, step);
			break;
		case KEY_WEIGHTS:
			rc = ingest_tensors(ig, v, SERIES_LAYER_WEIGHT, key,
			    stepi, step);
			break;
		case KEY_UPDATES:
			rc = ingest_tensors(ig, v, SERIES_LAYER_UPDATE, key,
			    stepi, step);
			break;
		case KEY_ADAM:
			rc = ingest_tensors(ig, v, SERIES_LAYER_ADAM, key,
			    stepi, step);
			break;
		case KEY_CLIP:
			rc = ingest_clip(ig, v, stepi, step);
			break;
		case KEY_METRICS:
			if (json_is_null(v))
				break;
			if (!json_is_object(v))
				return ingest_fail(ig, "steps[%zu].metrics: "
				    "expected an object of name -> value",
				    stepi);
			rc = ingest_named(ig, v, SERIES_METRIC, key, stepi,
			    step);
			break;
		case KEY_UNKNOWN:
			return ingest_fail(ig, "steps[%zu]: unknown key %s",
			    stepi, ingest_quote(q, key,
			    json_object_iter_key_len(it)));
		}
	}
	return rc;
}

/* A non-negative integer or null (-1) for a meta.layers field. */
static int
ingest_layer_int(struct ingest *ig, json_t *v, int64_t *out,
    const char *name, size_t len, const char *field)
{
	char	q[INGEST_QUOTE_SIZE];

	if (json_is_null(v)) {
		*out = -1;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return ingest_fail(ig, "meta.layers[%s].%s: expected a "
		    "non-negative integer", ingest_quote(q, name, len), field);
	*out = json_integer_value(v);
	return 0;
}

/* meta.layers: name -> {"numel", "shape", "depth"}, into b->layers_meta. */
static int
ingest_layers_meta(struct ingest *ig, json_t *layers)
{
	char			 q[INGEST_QUOTE_SIZE], q2[INGEST_QUOTE_SIZE];
	struct batch		*b = ig->b;
	struct batch_layer_meta	*lm;
	const char		*name, *key;
	json_t			*info, *v;
	void			*it, *jt;
	size_t			 len, i;

	if (json_is_null(layers))
		return 0;
	if (!json_is_object(layers))
		return ingest_fail(ig, "meta.layers: expected an object of "
		    "layer name -> {\"numel\", \"shape\", \"depth\"}");
	b->layers_meta = xcalloc(json_object_size(layers),
	    sizeof *b->layers_meta);
	for (it = json_object_iter(layers); it != NULL;
	    it = json_object_iter_next(layers, it)) {
		name = json_object_iter_key(it);
		len = json_object_iter_key_len(it);
		info = json_object_iter_value(it);
		if (len == 0 || len > WIRE_NAME_MAX)
			return ingest_fail(ig, "meta.layers[%s]: expected a "
			    "layer name of 1 to %d bytes",
			    ingest_quote(q, name, len), WIRE_NAME_MAX);
		if (json_is_null(info))
			continue;
		if (!json_is_object(info))
			return ingest_fail(ig, "meta.layers[%s]: expected an "
			    "object with \"numel\", \"shape\", \"depth\"",
			    ingest_quote(q, name, len));
		lm = &b->layers_meta[b->nlayers_meta++];
		lm->name = xstrndup(name, len);
		lm->numel = lm->depth = -1;
		for (jt = json_object_iter(info); jt != NULL;
		    jt = json_object_iter_next(info, jt)) {
			key = json_object_iter_key(jt);
			v = json_object_iter_value(jt);
			if (strcmp(key, "numel") == 0) {
				if (ingest_layer_int(ig, v, &lm->numel, name,
				    len, key) == -1)
					return -1;
			} else if (strcmp(key, "depth") == 0) {
				if (ingest_layer_int(ig, v, &lm->depth, name,
				    len, key) == -1)
					return -1;
			} else if (strcmp(key, "shape") == 0) {
				if (json_is_null(v))
					continue;
				if (!json_is_array(v))
					return ingest_fail(ig, "meta.layers[%s]"
					    ".shape: expected an array of "
					    "non-negative integers",
					    ingest_quote(q, name, len));
				for (i = 0; i < json_array_size(v); i++) {
					if (!json_is_integer(json_array_get(v,
					    i)) || json_integer_value(
					    json_array_get(v, i)) < 0)
						return ingest_fail(ig,
						    "meta.layers[%s].shape[%zu]"
						    ": expected a non-negative "
						    "integer", ingest_quote(q,
						    name, len), i);
				}
				lm->shape_json = ingest_dumps(v);
			} else
				return ingest_fail(ig, "meta.layers[%s]: "
				    "unknown key %s (expected \"numel\", "
				    "\"shape\" or \"depth\")",
				    ingest_quote(q, name, len), ingest_quote(q2,
				    key, json_object_iter_key_len(jt)));
		}
	}
	return 0;
}

static int
ingest_meta(struct ingest *ig, json_t *meta)
{
	char		 q[INGEST_QUOTE_SIZE];
	struct batch	*b = ig->b;
	const char	*key;
	json_t		*v;
	void		*it;

	if (json_is_null(meta))
		return 0;
	if (!json_is_object(meta))
		return ingest_fail(ig, "meta: expected an object");
	/* The root is level 1 and meta level 2: its members start at 3. */
	for (it = json_object_iter(meta); it != NULL;
	    it = json_object_iter_next(meta, it)) {
		key = json_object_iter_key(it);
		if (ingest_depth_ok(json_object_iter_value(it), 3))
			continue;
		if (strcmp(key, "config") == 0 || strcmp(key, "layers") == 0)
			return ingest_fail(ig, "meta.%s: nested deeper than "
			    "%d levels", key, INGEST_MAX_DEPTH);
		return ingest_fail(ig, "meta[%s]: nested deeper than %d levels",
		    ingest_quote(q, key, json_object_iter_key_len(it)),
		    INGEST_MAX_DEPTH);
	}
	if ((v = json_object_get(meta, "project")) != NULL &&
	    !json_is_null(v)) {
		if (!json_is_string(v))
			return ingest_fail(ig, "meta.project: expected a "
			    "string or null");
		b->project = xstrndup(json_string_value(v),
		    json_string_length(v));
	}
	if ((v = json_object_get(meta, "config")) != NULL &&
	    !json_is_null(v)) {
		b->config_json = ingest_dumps(v);
		if (strlen(b->config_json) > ig->max_config)
			return ingest_fail(ig, "meta.config: %zu bytes as "
			    "compact JSON, over the limit of %zu "
			    "(max-meta-config)", strlen(b->config_json),
			    ig->max_config);
	}
	if ((v = json_object_get(meta, "layers")) != NULL &&
	    ingest_layers_meta(ig, v) == -1)
		return -1;
	b->meta_json = ingest_dumps(meta);
	return 0;
}

/* "layer_names": unique series names, indexed for the compact form. */
static int
ingest_layer_names(struct ingest *ig, json_t *names)
{
	json_t	*v;
	size_t	 i, n, len;

	if (json_is_null(names))
		return 0;
	if (!json_is_array(names))
		return ingest_fail(ig, "layer_names: expected an array of "
		    "names");
	n = json_array_size(names);
	ig->names_given = 1;
	for (i = 0; i < n; i++) {
		v = json_array_get(names, i);
		len = json_string_length(v);	/* 0 for a non-string */
		if (!json_is_string(v) || len == 0 ||
		    len > WIRE_NAME_MAX)
			return ingest_fail(ig, "layer_names[%zu]: expected a "
			    "series name of 1 to %d bytes", i,
			    WIRE_NAME_MAX);
		if (ingest_name_add(ig, json_string_value(v), len) == -1)
			return -1;
	}
	return 0;
}

static int
ingest_top(struct ingest *ig, json_t *root)
{
	char		 q[INGEST_QUOTE_SIZE];
	struct batch	*b = ig->b;
	const char	*key;
	json_t		*v;
	void		*it;
	size_t		 i, n;

	for (it = json_object_iter(root); it != NULL;
	    it = json_object_iter_next(root, it)) {
		key = json_object_iter_key(it);
		if (strcmp(key, "run") != 0 && strcmp(key, "meta") != 0 &&
		    strcmp(key, "steps") != 0 &&
		    strcmp(key, "layer_names") != 0 &&
		    strcmp(key, "dropped") != 0)
			return ingest_fail(ig, "unknown key %s (expected "
			    "\"run\", \"meta\", \"layer_names\", \"steps\" or "
			    "\"dropped\")", ingest_quote(q, key,
			    json_object_iter_key_len(it)));
	}
	if ((v = json_object_get(root, "run")) == NULL)
		return ingest_fail(ig, "missing \"run\"");
	if (!json_is_string(v) || !wire_run_key_ok(json_string_value(v),
	    json_string_length(v)))
		return ingest_fail(ig, "run: expected 1 to %d characters of "
		    "[A-Za-z0-9._:-]", WIRE_RUN_KEY_MAX);
	b->run = xstrdup(json_string_value(v));
	if ((v = json_object_get(root, "meta")) != NULL &&
	    ingest_meta(ig, v) == -1)
		return -1;
	if ((v = json_object_get(root, "dropped")) != NULL &&
	    !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return ingest_fail(ig, "dropped: expected a "
			    "non-negative integer");
		b->dropped = json_integer_value(v);
	}
	if ((v = json_object_get(root, "layer_names")) != NULL &&
	    ingest_layer_names(ig, v) == -1)
		return -1;
	if ((v = json_object_get(root, "steps")) == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return ingest_fail(ig, "steps: expected an array");
	n = json_array_size(v);
	ig->nsteps = n;
	if (n > 0)
		b->steps = xreallocarray(NULL, n, sizeof *b->steps);
	for (i = 0; i < n; i++)
		if (ingest_step(ig, json_array_get(v, i), i) == -1)
			return -1;
	return 0;
}

/* Parse body with Jansson; NULL with a bad_json cause on failure. */
static json_t *
ingest_load(struct ingest *ig, const char *body, size_t len)
{
	json_error_t	 err;
	json_t		*root;
	const char	*text, *near;

	root = json_loadb(body == NULL ? "" : body, len, INGEST_JSON_FLAGS,
	    &err);
	if (root != NULL)
		return root;
	/* Jansson's own words, but not its flag names. */
	if ((near = strstr(err.text, " near ")) == NULL)
		near = "";
	switch (json_error_code(&err)) {
	case json_error_null_character:
	case json_error_null_byte_in_key:
		text = "\\u0000 (NUL) is not allowed in strings";
		break;
	case json_error_out_of_memory:
		fatalx("ingest: jansson: %s", err.text);
	default:
		text = err.text;
		near = "";
		break;
	}
	ig->code = "bad_json";
	free(ig->cause);
	xasprintf(&ig->cause, "invalid JSON at line %d, column %d: %s%s",
	    err.line, err.column, text, near);
	return NULL;
}

struct batch *
ingest_parse_fast(const char *body, size_t len)
{
	struct ingest	ig;

	ingest_init(&ig, body, len);
	if (ingest_scan(&ig, body, len) == -1) {
		free(ig.cause);
		batch_free(ig.b);
		ig.b = NULL;
	}
	ingest_cleanup(&ig);
	return ig.b;
}

struct batch *
ingest_parse_tree(const char *body, size_t len, size_t max_config,
    const char **code, char **cause)
{
	struct ingest	 ig;
	json_t		*root = NULL;

	ingest_init(&ig, body, len);
	ig.max_config = max_config;
	if ((root = ingest_load(&ig, body, len)) == NULL)
		goto fail;
	if (!json_is_object(root)) {
		ingest_fail(&ig, "expected a JSON object at the top level");
		goto fail;
	}
	if (ingest_top(&ig, root) == -1)
		goto fail;
	json_decref(root);
	ingest_cleanup(&ig);
	return ig.b;

fail:
	*code = ig.code;
	*cause = ig.cause;
	batch_free(ig.b);
	json_decref(root);
	ingest_cleanup(&ig);
	return NULL;
}

struct batch *
ingest_parse(const char *body, size_t len, size_t max_config,
    const char **code, char **cause)
{
	struct batch	*b;

	if ((b = ingest_parse_fast(body, len)) != NULL)
		return b;
	/* Not the client's shape, or not valid: Jansson decides. */
	return ingest_parse_tree(body, len, max_config, code, cause);
}

const char *
ingest_parse_finish(const char *body, size_t len, const char **code,
    char **cause)
{
	char		 q[INGEST_QUOTE_SIZE];
	struct ingest	 ig;
	const char	*status = NULL, *key;
	json_t		*root, *v;
	void		*it;

	if (len == 0)
		return "finished";
	memset(&ig, 0, sizeof ig);
	if ((root = ingest_load(&ig, body, len)) == NULL)
		goto fail;
	if (!json_is_object(root)) {
		ingest_fail(&ig, "expected a JSON object at the top level");
		goto fail;
	}
	for (it = json_object_iter(root); it != NULL;
	    it = json_object_iter_next(root, it)) {
		key = json_object_iter_key(it);
		if (strcmp(key, "status") != 0) {
			ingest_fail(&ig, "unknown key %s (expected \"status\")",
			    ingest_quote(q, key, json_object_iter_key_len(it)));
			goto fail;
		}
	}
	if ((v = json_object_get(root, "status")) == NULL) {
		ingest_fail(&ig, "missing \"status\"");
		goto fail;
	}
	if (json_is_string(v) && strcmp(json_string_value(v), "finished") == 0)
		status = "finished";
	else if (json_is_string(v) &&
	    strcmp(json_string_value(v), "failed") == 0)
		status = "failed";
	else {
		ingest_fail(&ig, "status: expected \"finished\" or \"failed\"");
		goto fail;
	}
	json_decref(root);
	return status;

fail:
	*code = ig.code;
	*cause = ig.cause;
	json_decref(root);
	return NULL;
}
