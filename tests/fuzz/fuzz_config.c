/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config: a libFuzzer harness for gradwatchd's configuration file.
 * Each input is a config file, loaded as main loads one: config_init(),
 * config_load_file(), config_finish() when the load succeeds, then
 * config_cleanup().  Nothing may crash, leak or hit undefined behaviour
 * (ASan, UBSan, LeakSanitizer), and a config that config_finish() passes
 * must be complete.  The input lives in a memfd.
 *
 * So that a run touches nothing outside itself, while the config code
 * runs every file it opens (token-file, bearer-file=) is the input
 * itself, and host names resolve only as numeric addresses (this file's
 * fopen() and getaddrinfo() stand in for the C library's).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int	 fuzz_fd = -1;
static char	 fuzz_path[64];		/* the input, as a path to open */
static int	 fuzz_inside;		/* 1 while the config code runs */

static FILE	*(*fuzz_real_fopen)(const char *, const char *);
static int	 (*fuzz_real_getaddrinfo)(const char *, const char *,
		    const struct addrinfo *, struct addrinfo **);

FILE *
fopen(const char *path, const char *mode)
{
	if (fuzz_real_fopen == NULL &&
	    (fuzz_real_fopen = (FILE *(*)(const char *, const char *))
	    dlsym(RTLD_NEXT, "fopen")) == NULL)
		abort();
	return fuzz_real_fopen(fuzz_inside ? fuzz_path : path, mode);
}

int
getaddrinfo(const char *node, const char *service,
    const struct addrinfo *hints, struct addrinfo **res)
{
	struct addrinfo	h;

	if (fuzz_real_getaddrinfo == NULL &&
	    (fuzz_real_getaddrinfo = (int (*)(const char *, const char *,
	    const struct addrinfo *, struct addrinfo **))
	    dlsym(RTLD_NEXT, "getaddrinfo")) == NULL)
		abort();
	memset(&h, 0, sizeof h);
	if (hints != NULL)
		h = *hints;
	h.ai_flags |= AI_NUMERICHOST;	/* never the network */
	return fuzz_real_getaddrinfo(node, service, &h, res);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if ((fuzz_fd = memfd_create("fuzz_config", MFD_CLOEXEC)) == -1) {
		perror("fuzz_config: memfd_create");
		abort();
	}
	snprintf(fuzz_path, sizeof fuzz_path, "/proc/self/fd/%d", fuzz_fd);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	 cfg;
	char		*cause = NULL;

	if (ftruncate(fuzz_fd, 0) == -1 ||
	    pwrite(fuzz_fd, data, size, 0) != (ssize_t)size)
		abort();
	config_init(&cfg);
	fuzz_inside = 1;
	if (config_load_file(&cfg, fuzz_path, &cause) == 0) {
		if (config_finish(&cfg, &cause) == 0) {
			if (cfg.http_host == NULL || cfg.ws_host == NULL ||
			    cfg.db_path == NULL || cfg.external_url == NULL ||
			    cfg.detector == NULL ||
			    (cfg.token_file != NULL && (cfg.token == NULL ||
			    *cfg.token == '\0')) ||
			    (cfg.nreceivers > 0 && cfg.receivers == NULL))
				abort();
		} else if (cause == NULL)
			abort();
	} else if (cause == NULL)
		abort();
	fuzz_inside = 0;
	free(cause);
	config_cleanup(&cfg);
	return 0;
}
