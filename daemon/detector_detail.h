/* SPDX-License-Identifier: MIT */
/*
 * detector_detail: the small JSON objects of numbers behind an alert
 * (its "detail"), built by hand because the keys are literals and the
 * values numbers and tensor names, and numbers written for a person.
 * Pure; used by detector_msg*.c on the detector's thread.
 */
#ifndef GW_DETECTOR_DETAIL_H
#define GW_DETECTOR_DETAIL_H

#include <stddef.h>
#include <stdint.h>

/* A growing JSON object, written by hand (keys are literals). */
struct jb {
	char		*p;
	size_t		 len;
	size_t		 cap;
	int		 first;
};


/* Start an empty object; jb_end() returns it, allocated. */
void	 jb_begin(struct jb *j);
/* Append printf-formatted text as is. */
void	 jb_put(struct jb *j, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Append a key (and its comma). */
void	 jb_key(struct jb *j, const char *k);
/* Members: a number (non-finite as null), an integer, a string. */
void	 jb_num(struct jb *j, const char *k, double v);
void	 jb_int(struct jb *j, const char *k, int64_t v);
void	 jb_str(struct jb *j, const char *k, const char *s);
/* Append s as a JSON string. */
void	 jb_quote(struct jb *j, const char *s);
/* Close the object and hand it over (the caller frees it). */
char	*jb_end(struct jb *j);
/* v for a person: 3 significant digits, NaN, Infinity, -Infinity. */
const char *fmtv(char *buf, size_t len, double v);

#endif
