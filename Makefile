# gradwatch: non-recursive Makefile; every output goes under build/.
#   make            build the daemon, the client library and the examples
#   make run        build, then start gradwatchd on its defaults
#   make test       build, then run every test (prove, TAP)
#   make bench      build, then run the benchmarks (they print figures)
#   make SANITIZE=address,undefined test    (or SANITIZE=thread)
# System packages are installed on first use (apt-get; root or sudo).

PREFIX	?= /usr/local
CC	?= cc
comma	:= ,
ifdef SANITIZE
BUILD	?= build/san-$(subst $(comma),-,$(SANITIZE))
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD	?= build
SANFLAGS :=
endif

# Debian packages the build, the tests and the benchmarks need.
DEB_PKGS := build-essential pkg-config libmicrohttpd-dev libwebsockets-dev \
	libjansson-dev libsqlite3-dev libcurl4-openssl-dev zlib1g-dev libcmocka-dev \
	curl jq sqlite3 perl
# Alert delivery's real neighbours, started by the tests: Alertmanager,
# and promtool (from prometheus) to lint /metrics and check the examples.
DEB_PKGS += prometheus-alertmanager prometheus
# The dashboard (npm installs uPlot) and its browser tests (Debian's Chromium,
# fonts for its screenshots).  Node and npm only when missing: NodeSource's
# nodejs package bundles npm and conflicts with Debian's npm.
DEB_PKGS += chromium fonts-dejavu-core
ifeq ($(shell command -v node 2>/dev/null),)
DEB_PKGS += nodejs
endif
ifeq ($(shell command -v npm 2>/dev/null),)
DEB_PKGS += npm
endif

PKGS	:= libmicrohttpd libwebsockets jansson sqlite3 libcurl
WARN	:= -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wcast-qual -Wformat=2 -Wwrite-strings -Wvla
ifdef CI
WARN	+= -Werror
endif
OPT	?= -O2 -g
CFLAGS_ALL = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(OPT) $(WARN) \
	$(SANFLAGS) -MMD -MP -pthread
DEP_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
DEP_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm

DEPS_STAMP := build/.deps-installed

.PHONY: all run test bench install clean deps lint headers eval
all: $(DEPS_STAMP) daemon

# Install the missing Debian packages, once (re-checked when this file changes).
deps: $(DEPS_STAMP)
$(DEPS_STAMP): Makefile
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@mkdir -p build && touch $@

# ---- daemon ------------------------------------------------------------
DAEMON_SRCS := $(wildcard daemon/*.c)
DAEMON_OBJS := $(patsubst daemon/%.c,$(BUILD)/daemon/%.o,$(DAEMON_SRCS)) $(BUILD)/schema.o \
	$(BUILD)/daemon/webfiles_data.o
DAEMON_LIB_OBJS := $(filter-out $(BUILD)/daemon/main.o,$(DAEMON_OBJS))
SCHEMA_SQL := $(sort $(wildcard schema/[0-9][0-9][0-9][0-9]_*.sql))

.PHONY: daemon
daemon: $(BUILD)/gradwatchd

$(BUILD)/gradwatchd: $(DAEMON_OBJS)
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(DEP_LIBS)

$(BUILD)/daemon/%.o: daemon/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(DEP_CFLAGS) -Idaemon -Iclient_lib -c -o $@ $<

# The migrations, embedded as C strings in order (schema_sql[i] is version i+1).
$(BUILD)/schema.c: $(SCHEMA_SQL) Makefile
	@mkdir -p $(@D)
	@{ echo '/* Generated from the schema folder by the Makefile; do not edit. */'; \
	  echo '#include <stddef.h>'; \
	  echo 'const char *const schema_sql[] = {'; \
	  for f in $(SCHEMA_SQL); do \
		echo "/* $$f */"; \
		sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $$f; \
		echo ','; \
	  done; \
	  echo 'NULL };'; \
	  echo 'const size_t schema_sql_count = $(words $(SCHEMA_SQL));'; } > $@

$(BUILD)/schema.o: $(BUILD)/schema.c
	$(CC) $(CFLAGS_ALL) -Wno-missing-prototypes -Wno-overlength-strings -c -o $@ $<

# The daemon built with ThreadSanitizer, build/tsan/gradwatchd: what
# tests/integration/24-tsan.sh runs a subset of the integration tests
# against (the same build as `make SANITIZE=thread`'s daemon, in its own
# folder, so that `make test` can build and use it beside the plain one).
ifndef SANITIZE
.PHONY: tsan
tsan:
	+$(MAKE) SANITIZE=thread BUILD=build/tsan build/tsan/gradwatchd
test: tsan
endif

# Each daemon header compiles on its own.
headers: $(DEPS_STAMP)
	@for h in daemon/*.h; do \
		echo "#include \"$$h\"" | $(CC) $(filter-out -MMD -MP,$(CFLAGS_ALL)) $(DEP_CFLAGS) -I. -Idaemon -Iclient_lib -x c -fsyntax-only - || exit 1; \
	done; echo "headers: every header compiles alone"

# ---- examples ------------------------------------------------------------
# Each examples/NAME.c is a training program, built into build/examples/NAME
# against libgradwatch (the variables of its section).  `make demo` starts
# gradwatchd unless one answers and trains the examples against it.
EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLE_BINS := $(patsubst examples/%.c,$(BUILD)/examples/%,$(EXAMPLE_SRCS))

.PHONY: examples demo
all: examples
examples: $(EXAMPLE_BINS)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libgradwatch.so
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(GW_LIB_CFLAGS) -o $@ $< $(GW_LIB_LDLIBS) -lm

demo: all
	GW_BUILD=$(BUILD) examples/demo.sh --no-build
# ---- end of examples -----------------------------------------------------

# ---- unit tests ----------------------------------------------------------
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))

# test_<module> links <module>.o, the generic modules and what UNIT_DEPS_<test> adds.
UNIT_COMMON := batch.o log.o now.o xmalloc.o wire_json.o
INGEST_OBJS := ingest.o ingest_core.o ingest_dump.o ingest_scan.o numscan.o
DETECTOR_OBJS := detector.o detector_evict.o detector_alert.o alert_kind.o baseline.o detector_config.o \
	detector_detail.o detector_msg.o detector_msg_tensor.o detector_rules.o detector_group.o \
	detector_rules_tensor.o detector_order.o
STORE_OBJS := store.o store_sql.o store_rows.o store_series.o store_tails.o store_migrate.o store_alerts.o \
	store_history.o store_json.o store_outbox.o chunk.o store_rowjson.o chunk_read.o notice.o receiver.o \
	alert_kind.o
QUERY_OBJS := query.o query_chunks.o query_points.o query_heatmap.o query_runs.o wire_json.o \
	query_export.o store_rowjson.o chunk.o chunk_read.o
UNIT_DEPS_test_chunk := chunk_read.o
UNIT_DEPS_test_store := $(STORE_OBJS)
UNIT_DEPS_test_publish := $(STORE_OBJS)
UNIT_DEPS_test_pool := queue.o
UNIT_DEPS_test_config := receiver.o detector_config.o alert_kind.o
UNIT_DEPS_test_detector_alert := alert_kind.o
UNIT_DEPS_test_watch := $(STORE_OBJS) $(DETECTOR_OBJS) detection.o now.o metrics.o evict.o
UNIT_DEPS_test_detector_evict := $(filter-out detector_evict.o,$(DETECTOR_OBJS))
UNIT_DEPS_test_query := $(QUERY_OBJS) $(STORE_OBJS)
UNIT_DEPS_test_ingest := $(INGEST_OBJS)
UNIT_DEPS_test_ingest_scan := $(INGEST_OBJS)
UNIT_DEPS_test_walsync := $(QUERY_OBJS) $(STORE_OBJS)
UNIT_DEPS_test_detector := $(INGEST_OBJS) $(filter-out detector.o,$(DETECTOR_OBJS))
UNIT_DEPS_test_receiver := $(DETECTOR_OBJS)
UNIT_DEPS_test_store_outbox := $(STORE_OBJS) $(DETECTOR_OBJS)
unit_objs = $(addprefix $(BUILD)/daemon/,$(sort $(patsubst test_%,%.o,$(1)) $(UNIT_COMMON) \
	$(UNIT_DEPS_$(1)))) $(BUILD)/schema.o

.SECONDEXPANSION:
$(BUILD)/tests/unit/%: tests/unit/%.c $$(call unit_objs,$$*)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(DEP_CFLAGS) $(shell pkg-config --cflags cmocka) -Idaemon -Iclient_lib \
		-o $@ $< $(call unit_objs,$*) $(DEP_LIBS) $(shell pkg-config --libs cmocka)

# ---- libgradwatch ------------------------------------------------------
# The client library: build/libgradwatch.so (SONAME libgradwatch.so.0,
# only gw_ symbols exported) and build/libgradwatch.a, both from the same
# -fPIC objects; its tests in tests/client/ (TAP programs, against a live
# daemon and against none) and bench/client.  A program using the library
# compiles with $(GW_LIB_CFLAGS) and links with $(GW_LIB_LDLIBS).
# $(BUILD)/gradwatch is the command line (`gradwatch sync` sends spool
# files); it links libgradwatch.a, so that it needs no run path installed.
GW_SOMAJOR	:= 0
LIB_PKGS	:= libcurl jansson zlib
LIB_SRCS	:= $(wildcard client_lib/*.c)
LIB_OBJS	:= $(patsubst client_lib/%.c,$(BUILD)/client_lib/%.o,$(LIB_SRCS))
LIB_CFLAGS	= -fPIC -fvisibility=hidden -DGW_BUILDING_LIBRARY \
	-Iclient_lib/include -Iclient_lib $(shell pkg-config --cflags $(LIB_PKGS) 2>/dev/null)
LIB_LIBS	= $(shell pkg-config --libs $(LIB_PKGS) 2>/dev/null) -lm
GW_LIB_CFLAGS	:= -Iclient_lib/include
GW_LIB_LDLIBS	= -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -lgradwatch

.PHONY: lib install-lib client-tsan cli
all: lib cli
lib: $(BUILD)/libgradwatch.so $(BUILD)/libgradwatch.a
cli: $(BUILD)/gradwatch

$(BUILD)/client_lib/%.o: client_lib/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(LIB_CFLAGS) -c -o $@ $<

$(BUILD)/libgradwatch.so.$(GW_SOMAJOR): $(LIB_OBJS) client_lib/exports.txt
	$(CC) $(CFLAGS_ALL) -shared -Wl,-soname,libgradwatch.so.$(GW_SOMAJOR) \
		-Wl,--version-script=client_lib/exports.txt -Wl,-z,defs \
		-o $@ $(LIB_OBJS) $(LIB_LIBS)

$(BUILD)/libgradwatch.so: $(BUILD)/libgradwatch.so.$(GW_SOMAJOR)
	ln -sf libgradwatch.so.$(GW_SOMAJOR) $@

$(BUILD)/libgradwatch.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $(LIB_OBJS)

$(BUILD)/gradwatch: client_lib/cli/gradwatch.c $(BUILD)/libgradwatch.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(GW_LIB_CFLAGS) -o $@ $< $(BUILD)/libgradwatch.a $(LIB_LIBS)

# The client tests link the shared library (so they test what is shipped);
# the spool's test runs $(BUILD)/gradwatch too.
CLIENT_TEST_SRCS := $(filter-out tests/client/gwt.c,$(wildcard tests/client/*.c))
CLIENT_TEST_BINS := $(patsubst tests/client/%.c,$(BUILD)/tests/client/%,$(CLIENT_TEST_SRCS))
CLIENT_TEST_CFLAGS = $(GW_LIB_CFLAGS) -Itests/client $(shell pkg-config --cflags $(LIB_PKGS) 2>/dev/null)
CLIENT_TEST_LIBS = $(GW_LIB_LDLIBS) $(LIB_LIBS)

$(BUILD)/tests/client/gwt.o: tests/client/gwt.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(CLIENT_TEST_CFLAGS) -c -o $@ $<

$(BUILD)/tests/client/%: tests/client/%.c $(BUILD)/tests/client/gwt.o \
    $(BUILD)/libgradwatch.so
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(CLIENT_TEST_CFLAGS) -o $@ $< \
		$(BUILD)/tests/client/gwt.o $(CLIENT_TEST_LIBS)

# Without SANITIZE, the threads and spool tests also run built with
# ThreadSanitizer (library included); `make client-tsan` builds just those.
ifndef SANITIZE
TSAN_DIR := build/tsan-client
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer -O1 -g
TSAN_OBJS := $(patsubst client_lib/%.c,$(TSAN_DIR)/client_lib/%.o,$(LIB_SRCS))
CLIENT_TSAN_BINS := $(patsubst tests/client/%.c,$(TSAN_DIR)/tests/client/%,$(wildcard tests/client/35-spool.c \
	tests/client/40-threads.c))
$(TSAN_DIR)/client_lib/%.o: client_lib/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(TSAN_FLAGS) $(LIB_CFLAGS) -c -o $@ $<
$(TSAN_DIR)/tests/client/%: tests/client/%.c tests/client/gwt.c $(TSAN_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(TSAN_FLAGS) $(CLIENT_TEST_CFLAGS) -o $@ $< \
		tests/client/gwt.c $(TSAN_OBJS) $(LIB_LIBS)
endif
client-tsan: $(CLIENT_TSAN_BINS)
CLIENT_TEST_PROGS = $(CLIENT_TEST_BINS) $(CLIENT_TSAN_BINS) $(wildcard tests/client/*.sh)
test: $(CLIENT_TEST_BINS) $(CLIENT_TSAN_BINS) $(BUILD)/gradwatch

$(BUILD)/bench/client: bench/client.c $(BUILD)/libgradwatch.so
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(CLIENT_TEST_CFLAGS) -o $@ $< $(CLIENT_TEST_LIBS)
bench: $(BUILD)/bench/client

# make install PREFIX=...: the header, both libraries, gradwatch.pc and the
# gradwatch program.
install: install-lib
install-lib: lib cli
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/gradwatch $(DESTDIR)$(PREFIX)/bin/gradwatch
	install -m 644 client_lib/include/gradwatch.h $(DESTDIR)$(PREFIX)/include/gradwatch.h
	install -m 755 $(BUILD)/libgradwatch.so.$(GW_SOMAJOR) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libgradwatch.so.$(GW_SOMAJOR) $(DESTDIR)$(PREFIX)/lib/libgradwatch.so
	install -m 644 $(BUILD)/libgradwatch.a $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|g' \
		-e "s|@VERSION@|$$(sed -n 's/^#define GW_VERSION[^"]*"\(.*\)"/\1/p' client_lib/include/gradwatch.h)|g" \
		-e 's|@REQUIRES@|$(LIB_PKGS)|g' \
		client_lib/gradwatch.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/gradwatch.pc
# ---- end of libgradwatch ------------------------------------------------

# ---- test, run, bench ----------------------------------------------------
TEST_PROGS = $(UNIT_BINS) $(sort $(wildcard tests/integration/*.sh tests/integration/*.py)) \
	$(CLIENT_TEST_PROGS)

test: all $(UNIT_BINS)
	GW_BUILD=$(BUILD) GW_TOP=$(CURDIR) CMOCKA_MESSAGE_OUTPUT=TAP \
		prove --exec '' --timer $(TEST_PROGS)

run: all
	$(BUILD)/gradwatchd

BENCH_BINS := $(BUILD)/bench/ingest $(BUILD)/bench/raw_sqlite $(BUILD)/bench/detector
$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(DEP_CFLAGS) -Idaemon -Iclient_lib -o $@ $< $(DEP_LIBS)

# The detector alone, linked with its modules.
$(BUILD)/bench/detector: bench/detector.c $(addprefix $(BUILD)/daemon/,$(DETECTOR_OBJS) \
		batch.o log.o xmalloc.o)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(DEP_CFLAGS) -Idaemon -Iclient_lib -o $@ $^ $(DEP_LIBS)

# The chunk codec alone; built by `make bench`, run by hand.
BENCH_BINS += $(BUILD)/bench/chunk
$(BUILD)/bench/chunk: bench/chunk.c $(addprefix $(BUILD)/daemon/,chunk.o chunk_read.o log.o xmalloc.o)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -Idaemon -Iclient_lib -o $@ $(filter %.c %.o,$^) -lm

bench: all $(BENCH_BINS)
	GW_BUILD=$(BUILD) bench/run.sh

# Replay labelled traces through the real daemon and score its alerts.
# TRACES="dir ..." adds folders of traces (each with its labels.json).
eval: all
	GW_BUILD=$(BUILD) GW_TOP=$(CURDIR) tests/eval/eval.py tests/data/traces tests/data/traces_heldout \
		tests/data/traces_families $(TRACES)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/gradwatchd $(DESTDIR)$(PREFIX)/bin/gradwatchd

# Static checks.  Formatting is KNF by convention: clang-format 14 cannot
# keep KNF's tab-aligned declarations, so it is not used as a gate.
lint: headers
	cppcheck --quiet --std=c11 --enable=warning,portability,performance \
		--inline-suppr --error-exitcode=1 -I daemon -I client_lib/include \
		daemon client_lib examples bench

clean:
	rm -rf build

# ---- dashboard and stream ------------------------------------------------
# npm installs uPlot (and playwright-core for the browser tests) into
# node_modules from package-lock.json.  The dashboard (web/ and uPlot's
# files, served under /vendor/) is embedded into the daemon as
# $(BUILD)/webfiles_data.c; `gradwatchd --web-root web` serves web/ from
# disk instead while developing.  Browser tests drive /usr/bin/chromium.
NPM_STAMP	:= node_modules/.installed
WEB_FILES	:= $(sort $(wildcard web/*.html web/*.js web/*.css web/*.svg))
UPLOT_FILES	:= node_modules/uplot/dist/uPlot.esm.js node_modules/uplot/dist/uPlot.min.css
BROWSER_TESTS	:= $(sort $(wildcard tests/browser/[0-9]*.mjs))

# Refresh the README's screenshots (the browser test saves them in docs/).
.PHONY: screenshots
screenshots: all $(NPM_STAMP)
	GW_BUILD=$(BUILD) GW_TOP=$(CURDIR) GW_SCREENSHOT_DIR=$(CURDIR)/docs \
		node tests/browser/10-dashboard.mjs

$(NPM_STAMP): package.json package-lock.json | $(DEPS_STAMP)
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@
$(UPLOT_FILES): $(NPM_STAMP)

# Each file becomes a byte array; webfiles_paths[i] is its URL path.
$(BUILD)/webfiles_data.c: $(WEB_FILES) $(UPLOT_FILES) Makefile web
	@mkdir -p $(@D)
	@{ echo '/* Generated from web/ and uPlot by the Makefile; do not edit. */'; \
	  echo '#include <stddef.h>'; \
	  i=0; for f in $(WEB_FILES) $(UPLOT_FILES); do \
		echo "static const unsigned char webfile_$$i[] = {"; \
		od -An -v -tu1 $$f | sed -e 's/^ *//' -e 's/  */,/g' -e 's/$$/,/'; \
		echo '0 };'; i=$$((i + 1)); \
	  done; \
	  echo 'const char *const webfiles_paths[] = {'; \
	  for f in $(WEB_FILES); do echo "\"/$${f#web/}\","; done; \
	  for f in $(UPLOT_FILES); do echo "\"/vendor/$${f##*/}\","; done; \
	  echo 'NULL };'; \
	  echo 'const unsigned char *const webfiles_bodies[] = {'; \
	  i=0; for f in $(WEB_FILES) $(UPLOT_FILES); do echo "webfile_$$i,"; i=$$((i + 1)); done; \
	  echo 'NULL };'; \
	  echo 'const size_t webfiles_lens[] = {'; \
	  for f in $(WEB_FILES) $(UPLOT_FILES); do echo "$$(wc -c < $$f),"; done; \
	  echo '0 };'; \
	  echo 'const size_t webfiles_count = $(words $(WEB_FILES) $(UPLOT_FILES));'; } > $@.tmp
	@mv $@.tmp $@

$(BUILD)/daemon/webfiles_data.o: $(BUILD)/webfiles_data.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -Wno-missing-prototypes -Wno-missing-variable-declarations -c -o $@ $<

UNIT_DEPS_test_webfiles := webfiles_data.o
TEST_PROGS += $(BROWSER_TESTS)
test: $(NPM_STAMP)
bench: $(NPM_STAMP)
# ---- end of dashboard and stream -----------------------------------------

# ---- python --------------------------------------------------------------
# The Python binding (client_lib/python: the gradwatch package, ctypes over
# $(BUILD)/libgradwatch.so, and gradwatch.torch), its tests in tests/python/
# (numbered scripts; gwpy.py is their helper) and bench/torch_overhead.py.
# All run under Debian's /usr/bin/python3, which sees python3-torch (another
# python3 may come first on PATH).  `pip install ./client_lib/python`
# bundles the built library into the package (a platform wheel) and needs
# no network: the package builds itself (client_lib/python/gwbuild.py), so
# pip has nothing to download.  A test does it in a venv.  `make install`
# installs the package under $(PREFIX) too, offline (DESTDIR stages it).
DEB_PKGS += python3 python3-torch python3-numpy python3-pip python3-setuptools \
	python3-wheel python3-venv
PY_TESTS := $(sort $(wildcard tests/python/[0-9]*.py))
PY	?= /usr/bin/python3
TEST_PROGS += $(PY_TESTS)
test: $(BUILD)/libgradwatch.so
ifdef SANITIZE
# A sanitized library cannot load into an unsanitized python3: the Python
# tests use the plain build's library, built here.
.PHONY: python-plain-lib
test: python-plain-lib
python-plain-lib:
	$(MAKE) SANITIZE= build/libgradwatch.so
endif

.PHONY: bench-python
bench: bench-python
bench-python: $(BUILD)/libgradwatch.so $(BUILD)/gradwatchd
	GW_BUILD=$(BUILD) /usr/bin/python3 bench/torch_overhead.py
	@if /usr/bin/python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then \
		GW_BUILD=$(BUILD) /usr/bin/python3 bench/torch_overhead.py --device cuda; \
	else echo "bench: no CUDA here: bench/torch_overhead.py --device cuda and tests/python/gpu_checks.py need a GPU"; fi

.PHONY: install-python
install: install-python
# Where Python looks for packages under $(PREFIX): Debian's dist-packages
# when its python3 has that on its path (PREFIX=/usr/local), else the usual
# lib/pythonX.Y/site-packages.  (pip's --prefix would put it under
# $(PREFIX)/local on Debian.)
PY_SITE = $(shell $(PY) -c 'import sys, sysconfig; p = "$(PREFIX)".rstrip("/"); \
	d = ["%s/lib/python%d.%d/%s" % (p, *sys.version_info[:2], k) for k in ("dist-packages", "site-packages")]; \
	print(([x for x in d if x in sys.path] or [sysconfig.get_path("platlib", "posix_prefix", \
	vars={"base": p, "platbase": p})])[0])')
install-python: $(BUILD)/libgradwatch.so $(DEPS_STAMP)
	@site='$(PY_SITE)'; test -n "$$site" || exit 1; \
	GRADWATCH_LIB=$(abspath $(BUILD))/libgradwatch.so.$(GW_SOMAJOR) $(PY) -m pip install \
		--quiet --no-deps --no-index --no-build-isolation --no-cache-dir \
		--root-user-action=ignore --upgrade --target "$(DESTDIR)$$site" ./client_lib/python && \
	echo "install-python: the gradwatch package is in $(DESTDIR)$$site" && \
	if ! $(PY) -c 'import sys; sys.exit("'"$$site"'" not in sys.path)'; then \
		echo "install-python: $(PY) does not look there; add it to PYTHONPATH"; fi
# ---- end of python -------------------------------------------------------

# ---- fuzzing -------------------------------------------------------------
# libFuzzer harnesses (tests/fuzz/): the ingest parser's fast path against
# its Jansson path and numscan against strtod, and the config file.  Built
# with Debian's clang into build/fuzz/ (never gcc's objects), with ASan and
# UBSan; clang alone finds log.c's vsnprintf format non-literal.
# `make fuzz FUZZ_SECONDS=N` runs each for N seconds from its seed corpus
# (tests/fuzz/corpus_*), keeping what it finds in build/fuzz/corpus_*;
# tests/integration/23-fuzz-short.sh runs them briefly in `make test`.
DEB_PKGS += clang libclang-rt-dev
FUZZ_DIR	:= build/fuzz
FUZZ_SECONDS	?= 60
FUZZ_CFLAGS	= $(filter-out $(SANFLAGS),$(CFLAGS_ALL)) -Wno-format-nonliteral -O1 \
	-fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_BINS	:= $(FUZZ_DIR)/fuzz_ingest $(FUZZ_DIR)/fuzz_config

.PHONY: fuzz
fuzz: $(FUZZ_BINS)
	@for h in ingest config; do mkdir -p $(FUZZ_DIR)/corpus_$$h && \
		$(FUZZ_DIR)/fuzz_$$h -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus_$$h tests/fuzz/corpus_$$h || exit 1; \
	done

$(FUZZ_DIR)/fuzz_ingest: $(addprefix $(FUZZ_DIR)/daemon/,$(INGEST_OBJS) $(UNIT_COMMON))
$(FUZZ_DIR)/fuzz_config: $(addprefix $(FUZZ_DIR)/daemon/,config.o receiver.o detector_config.o \
	alert_kind.o $(UNIT_COMMON))
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer $(DEP_CFLAGS) -Idaemon -Iclient_lib -o $@ $< \
		$(filter %.o,$^) $(DEP_LIBS)
$(FUZZ_DIR)/daemon/%.o: daemon/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(DEP_CFLAGS) -Idaemon -Iclient_lib -c -o $@ $<
test: $(FUZZ_BINS)
# ---- end of fuzzing ------------------------------------------------------

-include $(shell find build -name '*.d' 2>/dev/null)
