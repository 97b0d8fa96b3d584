# Ear: the entry point. `make` builds build/ear; `make test` runs every test.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
# CI builds with warnings as errors.
WERROR     ?= $(if $(CI),ON,OFF)
CMAKE_ARGS ?=

.PHONY: all ear deps test asan demo clean install fuzz valgrind bench

all: ear

ear:
	@cmake -S . -B $(BUILD) -DEAR_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Installs what building and testing need, from Debian's packages (idempotent).
deps:
	@bash tools/deps.sh

test: deps ear
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The same suite, built with clang under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: deps
	@CC=clang cmake -S . -B $(ASAN_BUILD) -DEAR_SANITIZE=ON -DEAR_WERROR=$(WERROR) \
	    -DCMAKE_BUILD_TYPE=Debug $(CMAKE_ARGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS)

# Each libFuzzer target (tests/fuzz) for FUZZ_SECONDS, built with clang, ASan and UBSan.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 45
fuzz: deps
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DEAR_FUZZ=ON -DEAR_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers
	@bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The service's tests again, with every `ear` run under valgrind's memcheck.
valgrind: deps ear
	@bash tests/reliability/valgrind.sh $(BUILD)

# ear serve against the Python services, side by side (bench/compare_seed.sh): the original
# (../shared/peers/seed-python) on its own model, the compact family's (compact-python) on that
# family. Writes BENCHMARKS.md and bench/benchmarks.png. Installs the peers' Debian packages;
# ~13 minutes.
bench: deps ear
	@bash bench/compare_seed.sh $(BUILD)/ear

# The main job: the demo dataset (DEMO=instruments, the default: instrument sounds and pictures;
# DEMO=stamps: Tux Paint's stamps), its index with its committed model, then `ear serve` on
# 127.0.0.1:5001 in the foreground (tools/demo.sh; Ctrl-C stops).
DEMO ?= instruments
demo: deps ear
	@bash tools/demo.sh $(BUILD)/ear 5001 $(DEMO)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# Installs the binaries, the site's content and the nginx, systemd (INIT=systemd, the default)
# or supervisor (INIT=supervisor) files, filled in with these paths; DESTDIR stages it all
# elsewhere. Build first: `make && sudo make install` (docs/deploying.md).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share/ear
DOCDIR     ?= $(PREFIX)/share/doc/ear
SYSCONFDIR ?= /etc
SYSTEMDDIR ?= $(SYSCONFDIR)/systemd/system
LOGDIR     ?= /var/log/ear
INIT       ?= systemd
INSTALL_VARIABLES = BUILD DESTDIR PREFIX BINDIR DATADIR DOCDIR SYSCONFDIR SYSTEMDDIR LOGDIR INIT \
    SERVICE_USER SERVER_NAME LISTEN EAR_PORT SITE_PORT EAR_MODEL EAR_INDEX EAR_DATA SITE_CONTENT \
    EAR_MEMORY_MAX SITE_MEMORY_MAX MODEL INDEX DATA

install:
	@env $(foreach v,$(INSTALL_VARIABLES),$(if $(value $(v)),$(v)='$($(v))')) bash deploy/install.sh
