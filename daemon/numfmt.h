/* SPDX-License-Identifier: MIT */
/*
 * numfmt: a finite double as the shortest JSON number that reads back
 * to exactly it (what strtod() of the text gives is the double), the
 * way answers with hundreds of thousands of values need it: about ten
 * times faster than printf("%.17g").  numscan is its inverse.  Pure
 * and reentrant.
 */
#ifndef GW_NUMFMT_H
#define GW_NUMFMT_H

#include <stddef.h>

#define NUMFMT_MAX	32	/* bytes numfmt_double() may write, NUL too */

/*
 * Write finite v into buf (NUMFMT_MAX bytes) as a JSON number and a
 * NUL; returns its length.  Digits are the fewest that read back to v
 * (17 at most); the notation is printf's %g (an exponent below -4 or
 * from 17 on), with ".0" on a number that would read as an integer, as
 * Jansson writes reals.  A non-finite v writes "null": callers map NaN
 * and the infinities to API.md's strings first.
 */
size_t	numfmt_double(char *buf, double v);

#endif
