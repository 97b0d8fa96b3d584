# Ear: the entry point. `make` builds build/ear; `make test` runs every test.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
# CI builds with warnings as errors.
WERROR     ?= $(if $(CI),ON,OFF)
CMAKE_ARGS ?=

.PHONY: all ear deps test asan demo clean install

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

# The main job, for now: decode a spoken sample and show its log-mel spectrogram.
demo: deps ear
	@bash tools/demo.sh $(BUILD)/ear

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
