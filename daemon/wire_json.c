/* SPDX-License-Identifier: MIT */
/*
 * wire_json: the JSON forms of the wire's numbers and error bodies
 * (see wire_json.h).  Pure; any thread.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "wire.h"
#include "wire_json.h"
#include "xmalloc.h"

json_t *
wire_json_number(double v)
{
	const char	*s = wire_nonfinite_str(v);

	return s != NULL ? json_string(s) : json_real(v);
}

/* s as a JSON string; not UTF-8, with '?' for every non-ASCII byte. */
static json_t *
wire_json_safe_string(const char *s)
{
	json_t	*j;
	char	*t;
	size_t	 i;

	if ((j = json_string(s)) != NULL)
		return j;
	t = xstrdup(s);
	for (i = 0; t[i] != '\0'; i++)
		if ((unsigned char)t[i] >= 0x80)
			t[i] = '?';
	j = json_string(t);
	free(t);
	return j;
}

unsigned int
wire_status(const char *code)
{
	static const struct {
		const char	*code;
		unsigned int	 status;
	} table[] = {
		{ "bad_json", 400 },
		{ "bad_request", 400 },
		{ "unauthorized", 401 },
		{ "forbidden", 403 },
		{ "not_found", 404 },
		{ "too_large", 413 },
		{ "unsupported_media_type", 415 },
		{ "overloaded", 503 },
	};
	size_t	i;

	for (i = 0; i < sizeof table / sizeof table[0]; i++)
		if (strcmp(code, table[i].code) == 0)
			return table[i].status;
	return 500;
}

char *
wire_error_body(const char *code, const char *message)
{
	json_t	*o;
	char	*s;

	o = json_object();
	json_object_set_new(o, WIRE_ERROR_KEY, wire_json_safe_string(code));
	json_object_set_new(o, WIRE_MESSAGE_KEY,
	    wire_json_safe_string(message));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		fatalx("wire_json: json_dumps failed");
	return s;
}
