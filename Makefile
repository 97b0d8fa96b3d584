# Ear: the entry point. `make` builds build/ear; `make test` runs every test.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
# CI builds with warnings as errors.
WERROR     ?= $(if $(CI),ON,OFF)
CMAKE_ARGS ?=

.PHONY: all ear deps test asan demo clean

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
