/* SPDX-License-Identifier: MIT */
/*
 * webfiles: the dashboard's files for the HTTP API's static hook.  By
 * default they are the copies embedded in the binary at build time
 * (web/ and uPlot under /vendor/); with a web root (--web-root) they
 * are read from that folder on each request (a file absent there still
 * comes from the embedded set), so the dashboard can be edited without
 * a rebuild.  Lookups may come from any thread.
 */
#ifndef GW_WEBFILES_H
#define GW_WEBFILES_H

#include <stddef.h>

struct webfiles;

/*
 * Files from the embedded set, or from root when it is not NULL (it
 * must be a folder).  NULL and an allocated *cause on failure.
 */
struct webfiles	*webfiles_new(const char *root, char **cause);
/* Free wf and every body it handed out.  NULL is fine. */
void		 webfiles_free(struct webfiles *wf);
/*
 * The file for a URL path ("/" is "/index.html"): body, its length and
 * its Content-Type, valid until webfiles_free(); -1 when there is no
 * such file or the path tries to leave the root.  The signature of
 * http_hooks.static_file, with wf as its arg.
 */
int		 webfiles_get_cb(void *wf, const char *path, const void **body,
		    size_t *len, const char **type);
/* Content-Type for a file name, by its extension. */
const char	*webfiles_type(const char *name);
/* 1 if path is a safe relative URL path: no "..", "//", "\" or NUL. */
int		 webfiles_is_safe_path(const char *path);

#endif
