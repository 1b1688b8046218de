# mcbox: build, set-up, tests and benchmarks. `make demo` and `make test` are the two commands
# a user needs (as root on Debian 12); both install what is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := all

ifeq ($(ASAN),1)
BUILD ?= build/asan
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD ?= build
SAN :=
endif

# DPDK's headers are included as system headers so our strict warnings judge only our code.
DPDK_CFLAGS = $(shell pkg-config --cflags libdpdk | sed 's/-I/-isystem /g')
DPDK_LIBS = $(shell pkg-config --libs libdpdk)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wformat=2 -Wvla
CFLAGS ?= -O2 -g
ALL_CFLAGS = $(CFLAGS) -std=gnu11 $(WARN) $(SAN) $(DPDK_CFLAGS) -MMD -MP
LDLIBS = $(DPDK_LIBS) -lrte_net_ring -lrte_bus_vdev -lm -lpthread

LIB_SRCS := config/config.c store/store.c store/index.c store/slab.c store/write.c store/read.c store/restart.c store/walk.c proto/proto.c proto/ascii.c proto/meta.c proto/binary.c proto/crawler.c dataplane/burst.c dataplane/ip6.c dataplane/frag.c dataplane/reply.c dataplane/budget.c dataplane/port.c dataplane/exception.c tcp/tcp.c tcp/admin.c
APP_SRCS := app/main.c app/stats.c app/memfile.c
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
APP_OBJS := $(APP_SRCS:%.c=$(BUILD)/obj/%.o)

UNIT_SRCS := $(wildcard tests/unit/*/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

LAB_QUEUES ?= 1
MCBOX_ARGS ?=
LAB_LINK ?=
export LAB_QUEUES MCBOX_ARGS LAB_LINK

.PHONY: all build deps hugepages lab-up lab-down demo test unit integration bench fuzz soak clean \
	stage-build-check \
	install uninstall install-check

# Builds; runs the package installer only when a build dependency is missing.
all:
	@pkg-config --exists libdpdk libmemcached && [ -f /usr/include/cmocka.h ] || bash scripts/deps.sh
	@$(MAKE) --no-print-directory build

build: $(BUILD)/mcbox $(BUILD)/mcbench $(BUILD)/mctcpbench $(BUILD)/mcload $(BUILD)/mcgen $(UNIT_BINS) $(BUILD)/tests/tools/test_ketama_check

# The load generator: plain sockets, no DPDK.
$(BUILD)/mcload: tools/mcload.c tools/ketama.c tools/ketama.h tools/workload.c tools/workload.h
	@echo "  LD $@"
	@$(CC) $(CFLAGS) -std=gnu11 $(WARN) $(SAN) -o $@ $(filter %.c,$^) -lpthread -lm

# The DPDK load generator (memif, af_xdp, af_packet, a NIC); its matcher and workload have no
# DPDK in them, so the unit test links them alone.
GEN_LIB_SRCS := tools/workload.c tools/mcgen_match.c tools/mcgen_net.c
GEN_LIB_OBJS := $(GEN_LIB_SRCS:%.c=$(BUILD)/obj/%.o)
$(BUILD)/mcgen: $(BUILD)/obj/tools/mcgen.o $(GEN_LIB_OBJS)
	@echo "  LD $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(DPDK_LIBS) -lm

$(BUILD)/tests/tools/test_mcgen: tests/unit/tools/test_mcgen.c $(GEN_LIB_OBJS)
	@mkdir -p $(dir $@)
	@echo "  LD $@"
	@$(CC) $(ALL_CFLAGS) -I. -o $@ $^ $(DPDK_LIBS) -lm -lcmocka

# mcload's ketama against libmemcached's own; tests/run_unit.sh runs it with the unit tests.
$(BUILD)/tests/tools/test_ketama_check: tools/ketama_check.c tools/ketama.c tools/ketama.h
	@mkdir -p $(dir $@)
	@echo "  LD $@"
	@$(CC) $(CFLAGS) -std=gnu11 $(WARN) $(SAN) $(shell pkg-config --cflags libmemcached) -o $@ \
		$(filter %.c,$^) $(shell pkg-config --libs libmemcached)

$(BUILD)/mcbench: $(BUILD)/obj/bench/bench.o $(LIB_OBJS)
	@echo "  LD $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/mctcpbench: $(BUILD)/obj/bench/tcpbench.o $(LIB_OBJS)
	@echo "  LD $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/mcbox: $(APP_OBJS) $(LIB_OBJS)
	@echo "  LD $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	@echo "  LD $@"
	@$(CC) $(ALL_CFLAGS) -I. -o $@ $< $(LIB_OBJS) $(LDLIBS) -lcmocka

deps:
	@bash scripts/deps.sh

hugepages: deps
	@bash scripts/hugepages.sh 512 || true

lab-up: all
	@bash scripts/lab.sh up

lab-down:
	@bash scripts/lab.sh down

demo: all
	@bash scripts/demo.sh

unit: build
	@bash tests/run_unit.sh $(BUILD)

# make install [DESTDIR=...] [PREFIX=/usr/local]: the binary, its man page, the systemd unit,
# and the two files an operator edits. Those live in SYSCONFDIR (/etc whatever the PREFIX:
# the unit names them, and /usr/local/etc is not where systemd or an operator looks) and are
# kept when they exist, so a reinstall never overwrites a box's configuration. The unit goes
# to PREFIX/lib/systemd/system, which systemd searches for /usr and /usr/local alike.
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
HUGEADM ?= /usr/bin/hugeadm
install: $(BUILD)/mcbox
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/mcbox $(DESTDIR)$(SYSCONFDIR)/default
	install -m 755 $(BUILD)/mcbox $(DESTDIR)$(BINDIR)/mcbox
	install -m 644 dist/mcbox.1 $(DESTDIR)$(MANDIR)/man1/mcbox.1
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		-e 's|@HUGEADM@|$(HUGEADM)|g' dist/mcbox.service.in >$(DESTDIR)$(UNITDIR)/mcbox.service
	chmod 644 $(DESTDIR)$(UNITDIR)/mcbox.service
	[ -e $(DESTDIR)$(SYSCONFDIR)/mcbox/mcbox.conf ] || \
		install -m 644 config/mcbox.conf $(DESTDIR)$(SYSCONFDIR)/mcbox/mcbox.conf
	[ -e $(DESTDIR)$(SYSCONFDIR)/default/mcbox ] || \
		install -m 644 dist/mcbox.default $(DESTDIR)$(SYSCONFDIR)/default/mcbox

# Removes what install put in PREFIX; the configuration in SYSCONFDIR stays (remove it by hand).
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/mcbox $(DESTDIR)$(MANDIR)/man1/mcbox.1 \
		$(DESTDIR)$(UNITDIR)/mcbox.service

# make install into a scratch DESTDIR, then check the files, the man page against the options
# and the unit with systemd-analyze verify (part of make test).
install-check: $(BUILD)/mcbox
	@bash tests/install/check.sh

integration:
	@bash tests/integration/run.sh

test: deps
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory ASAN=1 build
	@$(MAKE) --no-print-directory stage-build-check
	@bash tests/run_unit.sh build build/asan
	@bash tests/install/check.sh
	@FUZZ_REGRESSION=1 bash tests/fuzz/run.sh
	@bash tests/integration/run.sh

# The measurement build's code (-DMC_STAGE_TSC, cycles by stage: docs/PERFORMANCE.md) is not
# in any other build: compiled here so that it cannot rot unnoticed.
stage-build-check:
	@$(CC) $(filter-out -MMD -MP,$(ALL_CFLAGS)) -DMC_STAGE_TSC -fsyntax-only dataplane/burst.c \
		bench/bench.c
	@echo "ok   the -DMC_STAGE_TSC measurement build compiles"

bench: all
	@bash scripts/bench.sh

soak: all
	@bash scripts/soak.sh

fuzz: deps
	@bash tests/fuzz/run.sh

# libFuzzer targets: the library built again with clang and the fuzzer's instrumentation.
FUZZ_CC := clang
FUZZ_FLAGS = -O1 -g -std=gnu11 -Wall -Wextra -Werror -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=all $(DPDK_CFLAGS) -I.
FUZZ_OBJS := $(LIB_SRCS:%.c=build/fuzz/obj/%.o)

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC(fuzz) $<"
	@$(FUZZ_CC) $(FUZZ_FLAGS) -MMD -MP -c -o $@ $<

build/fuzz/fuzz_ascii: tests/fuzz/fuzz_proto.c $(FUZZ_OBJS)
	@$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -DFUZZ_MODE=0 -o $@ $(filter %.c %.o,$^) $(LDLIBS)
build/fuzz/fuzz_meta: tests/fuzz/fuzz_proto.c $(FUZZ_OBJS)
	@$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -DFUZZ_MODE=1 -o $@ $(filter %.c %.o,$^) $(LDLIBS)
build/fuzz/fuzz_binary: tests/fuzz/fuzz_proto.c $(FUZZ_OBJS)
	@$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -DFUZZ_MODE=2 -o $@ $(filter %.c %.o,$^) $(LDLIBS)
build/fuzz/fuzz_stream: tests/fuzz/fuzz_proto.c $(FUZZ_OBJS)
	@$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -DFUZZ_MODE=3 -o $@ $(filter %.c %.o,$^) $(LDLIBS)
build/fuzz/fuzz_packet: tests/fuzz/fuzz_packet.c $(FUZZ_OBJS)
	@$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $(filter %.c %.o,$^) $(LDLIBS)

.PHONY: fuzz-build
fuzz-build: build/fuzz/fuzz_ascii build/fuzz/fuzz_meta build/fuzz/fuzz_binary build/fuzz/fuzz_stream build/fuzz/fuzz_packet

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
