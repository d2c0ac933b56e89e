/* SPDX-License-Identifier: MIT */
/*
 * numfmt: a finite double as the JSON text Jansson's json_dumps() writes
 * for it at JSON_REAL_PRECISION(17): printf's "%.17g", with ".0" added
 * to a number that would read back as an integer and the exponent
 * without '+' or leading zeros.  Byte for byte the same, so an answer
 * written with it reads exactly as one written by Jansson; the value
 * reads back to exactly v.  Answers with hundreds of thousands of
 * values need it: a value whose decimal expansion is exact in 128 bits
 * (every float32 from about 1e-7 up, the gradient norms PyTorch
 * reports) is formatted with integer arithmetic, several times faster
 * than printf; any other goes through snprintf().  Pure and reentrant;
 * needs the "C" locale's decimal point, which gradwatchd never changes.
 */
#ifndef GW_NUMFMT_H
#define GW_NUMFMT_H

#include <stddef.h>

#define NUMFMT_MAX	32	/* bytes numfmt_double() may write, NUL too */

/*
 * Write finite v into buf (NUMFMT_MAX bytes) and a NUL; returns the
 * length.  A non-finite v writes "null": callers map NaN and the
 * infinities to API.md's strings first.
 */
size_t	numfmt_double(char *buf, double v);

#endif
