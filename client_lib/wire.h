/* SPDX-License-Identifier: MIT */
/*
 * wire: what the client library and gradwatchd must agree on, written
 * once and included by both (docs/API.md, "Ingest"): the run key's
 * rule, the longest series name, the strings that stand for non-finite
 * numbers in JSON, the class of a number, and the keys of an error
 * body.  Header-only (static inline, no state), so that the library
 * exports nothing new and the daemon links nothing of the library's;
 * any thread.
 */
#ifndef GW_WIRE_H
#define GW_WIRE_H

#include <math.h>
#include <stddef.h>
#include <string.h>

/* A run key: 1 to 128 of [A-Za-z0-9._:-]. */
#define WIRE_RUN_KEY_MAX	128
/* A series (or project) name: 1 to 256 bytes of UTF-8. */
#define WIRE_NAME_MAX		256

/* JSON has no NaN or infinities: these strings stand for them. */
#define WIRE_STR_NAN		"NaN"
#define WIRE_STR_PINF		"Infinity"
#define WIRE_STR_NINF		"-Infinity"

/* An error answer is {"error": <code>, "message": <sentence>}. */
#define WIRE_ERROR_KEY		"error"
#define WIRE_MESSAGE_KEY	"message"

/* The class of a number, as stored in the *_class columns (schema 0001). */
enum wire_class {
	WIRE_FINITE = 0,
	WIRE_NAN = 1,
	WIRE_PINF = 2,
	WIRE_NINF = 3
};

static inline int
wire_run_key_char_ok(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == ':' ||
	    ch == '-';
}

/* 1 if the len bytes at s are a run key. */
static inline int
wire_run_key_ok(const char *s, size_t len)
{
	size_t	i;

	if (len == 0 || len > WIRE_RUN_KEY_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!wire_run_key_char_ok((unsigned char)s[i]))
			return 0;
	return 1;
}

/* 1 if the string s (NULL allowed) is a run key. */
static inline int
wire_is_run_key(const char *s)
{
	return s != NULL &&
	    wire_run_key_ok(s, strnlen(s, WIRE_RUN_KEY_MAX + 1));
}

static inline enum wire_class
wire_class(double v)
{
	if (isnan(v))
		return WIRE_NAN;
	if (isinf(v))
		return v > 0 ? WIRE_PINF : WIRE_NINF;
	return WIRE_FINITE;
}

/* The string standing for a non-finite v; NULL when v is finite. */
static inline const char *
wire_nonfinite_str(double v)
{
	switch (wire_class(v)) {
	case WIRE_NAN:
		return WIRE_STR_NAN;
	case WIRE_PINF:
		return WIRE_STR_PINF;
	case WIRE_NINF:
		return WIRE_STR_NINF;
	default:
		return NULL;
	}
}

/* 1 and *d if the len bytes at s are one of the non-finite strings. */
static inline int
wire_nonfinite_parse(const char *s, size_t len, double *d)
{
	if (len == sizeof WIRE_STR_NAN - 1 && memcmp(s, WIRE_STR_NAN, len) == 0)
		*d = NAN;
	else if (len == sizeof WIRE_STR_PINF - 1 &&
	    memcmp(s, WIRE_STR_PINF, len) == 0)
		*d = INFINITY;
	else if (len == sizeof WIRE_STR_NINF - 1 &&
	    memcmp(s, WIRE_STR_NINF, len) == 0)
		*d = -INFINITY;
	else
		return 0;
	return 1;
}

/* The number a class column and its REAL column stand for. */
static inline double
wire_class_value(int class, double finite)
{
	switch (class) {
	case WIRE_NAN:
		return NAN;
	case WIRE_PINF:
		return INFINITY;
	case WIRE_NINF:
		return -INFINITY;
	default:
		return finite;
	}
}

#endif
