/* SPDX-License-Identifier: MIT */
/*
 * numscan: lexes one JSON number (RFC 8259's grammar, nothing looser)
 * and converts it to exactly what Jansson would make of it: an integer
 * token as strtoll() gives it, any other as the correctly rounded
 * double strtod() gives.  Most numbers a training loop sends (up to 19
 * significant digits, exponents within +-27) convert without strtod;
 * the rest go through it.  Pure and reentrant; needs the "C" locale's
 * decimal point, which gradwatchd never changes.
 */
#ifndef GW_NUMSCAN_H
#define GW_NUMSCAN_H

#include <stddef.h>
#include <stdint.h>

enum numscan_kind {
	NUMSCAN_NONE = 0,	/* not a number, or one to leave to Jansson */
	NUMSCAN_INT,		/* no fraction, no exponent: *ival */
	NUMSCAN_REAL		/* *dval */
};

/*
 * Scan the number starting at p (before end).  On success *endp is the
 * byte after it.  NUMSCAN_NONE covers malformed tokens and every case
 * where Jansson would refuse the number or the answer is not certain:
 * integers of more than 18 digits, reals that overflow, tokens longer
 * than NUMSCAN_TOKEN_MAX bytes.
 */
#define NUMSCAN_TOKEN_MAX	64

enum numscan_kind	numscan(const char *p, const char *end,
			    const char **endp, int64_t *ival, double *dval);

#endif
