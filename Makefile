# sluice build targets. `make test` is the README's test command and what CI runs.
GO ?= go
BIN ?= bin/sluice
MODEL ?=
PROMPT ?= Once upon a time

.PHONY: build static test lint bench fuzz fuzz-all soak run serve proto clean perfcheck perfcheck-update gpu-check sanitize mutate

# The version and commit that `sluice version` and /version report.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell c=$$(git rev-parse HEAD 2>/dev/null) || c=unknown; [ $$c = unknown ] || git diff --quiet HEAD 2>/dev/null || c=$$c-dirty; echo $$c)
LDFLAGS = -X main.linkVersion=$(VERSION) -X main.linkCommit=$(COMMIT)

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sluice

# A fully static binary (glibc linked in, the pure-Go resolver), for
# distroless and scratch images (deploy/Dockerfile).
static:
	CGO_ENABLED=1 $(GO) build -trimpath -tags netgo,osusergo \
		-ldflags '$(LDFLAGS) -linkmode external -extldflags "-static"' -o $(BIN) ./cmd/sluice

# The race detector runs over every package with concurrent code or tests:
# the step loop, scheduler and server, and the ones shared across
# goroutines (gguf's lazy array decoding, tokenizer and chat templates,
# the model store, speculation's controller, the CLI's serve). The numeric
# packages run once without it. internal/layout fails when a package whose
# tests start goroutines is missing here.
RACE_PKGS = ./kvcache ./scheduler ./engine ./server ./gguf ./tokenizer ./tokenizer/template ./store ./spec ./cmd/sluice ./grammar
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -race -count=1 -timeout 15m $(RACE_PKGS)

lint:
	@test -z "$$(gofmt -l .)" || (echo "gofmt needed:"; gofmt -l .; exit 1)
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2x ./...

# Fuzz the GGUF parser for FUZZTIME (default 2m). The seeds are small, so
# minimizing a new input takes well under FUZZMINIMIZE; FUZZPARALLEL sets the
# number of workers (default: one per CPU).
FUZZTIME ?= 2m
FUZZMINIMIZE ?= 10s
FUZZPARALLEL ?=
FUZZFLAGS = -run '^$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $(if $(FUZZPARALLEL),-parallel $(FUZZPARALLEL))
fuzz:
	$(GO) test ./gguf $(FUZZFLAGS) -fuzz '^FuzzParse$$'

# Every fuzz target of the repository in turn, FUZZTIME each.
fuzz-all:
	$(GO) test ./gguf $(FUZZFLAGS) -fuzz '^FuzzParse$$'
	$(GO) test ./model $(FUZZFLAGS) -fuzz '^FuzzLoad$$'
	$(GO) test ./server $(FUZZFLAGS) -fuzz '^FuzzCompletionRequest$$'
	$(GO) test ./server $(FUZZFLAGS) -fuzz '^FuzzChatRequest$$'
	$(GO) test ./tokenizer $(FUZZFLAGS) -fuzz '^FuzzEncode$$'
	$(GO) test ./tokenizer/template $(FUZZFLAGS) -fuzz '^FuzzParse$$'

# A few minutes of mixed HTTP traffic against `sluice serve` on a dummy model
# on 127.0.0.1, failing if RSS grows after a warm-up (cmd/sluice/soak_test.go,
# build tag soak; not part of `make test`). SOAKROUNDS and SOAKTIME bound it.
SOAKROUNDS ?= 5000
SOAKTIME ?= 8m
soak:
	SLUICE_SOAK_ROUNDS=$(SOAKROUNDS) SLUICE_SOAK_TIME=$(SOAKTIME) \
		$(GO) test -tags soak -run '^TestSoak$$' -count=1 -v -timeout 15m ./cmd/sluice

# The C kernels and the cgo boundary under AddressSanitizer and UBSan: the
# kernel tests and the model tests (FuzzLoad's seeds, the golden forward
# passes; -short skips the slow pure-Go comparisons), built by SAN_CC
# (Debian's clang) with go test -asan, so that an out-of-bounds access in
# C fails a test instead of passing unseen. TestSteadyStateAllocs counts
# Go allocations, which -asan changes. CI runs it after make test (about
# 8 minutes on 2 cores, most of it building the instrumented packages).
SAN_CC ?= clang
SAN_CFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=undefined -fno-sanitize-recover=undefined
sanitize:
	CC=$(SAN_CC) CGO_CFLAGS="$(SAN_CFLAGS)" CGO_LDFLAGS="-fsanitize=undefined" \
		$(GO) test -asan -short -count=1 -timeout 30m -skip '^TestSteadyStateAllocs$$' ./kernels/cpu ./model

# Mutation testing (not part of test): plant one small bug at a time in
# MUTATE_PKGS and report per package how many the tests catch, with the
# survivors. CPU-heavy; runs at low priority. Example:
#   make mutate MUTATE_PKGS=kvcache,sample MUTATE_FLAGS='-max 150 -budget 30m'
MUTATE_PKGS ?= kvcache,scheduler,sample,spec,engine
MUTATE_FLAGS ?=
mutate:
	nice -n 15 $(GO) run ./internal/mutate -pkgs $(MUTATE_PKGS) $(MUTATE_FLAGS)

# Serve MODEL (a GGUF path or store reference) on http://127.0.0.1:8080;
# without MODEL, a random-weight dummy model generated offline.
serve: build
	$(BIN) serve $(if $(MODEL),-m $(MODEL))

run: build
	$(BIN) run -m $(if $(MODEL),$(MODEL),dummy:tiny-llama:Q8_0) -p "$(PROMPT)"

# Regenerate the gRPC code in api/sluice/v1 (needs protoc: Debian's
# protobuf-compiler). The generated files are committed.
proto:
	GOBIN=$(CURDIR)/bin/protoc-plugins $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.11
	GOBIN=$(CURDIR)/bin/protoc-plugins $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.1
	PATH="$(CURDIR)/bin/protoc-plugins:$$PATH" protoc --proto_path=api/sluice/v1 \
		--go_out=api/sluice/v1 --go_opt=paths=source_relative \
		--go-grpc_out=api/sluice/v1 --go-grpc_opt=paths=source_relative sluice.proto

clean:
	rm -rf bin

# The performance gate (needs valgrind): instructions retired by fixed
# workloads, compared with bench/baseline.json (fails past +3%); then the
# gate's own test, which shows it fails on a deliberately slowed kernel.
perfcheck: build
	$(BIN) bench perfcheck --baseline bench/baseline.json
	$(GO) test -tags perfgate -count=1 -run TestGateCatchesSlowedKernel ./bench/perf

# Rewrite bench/baseline.json from this tree; commit it saying why the
# counts moved.
perfcheck-update: build
	$(BIN) bench perfcheck --update --baseline bench/baseline.json

# Bundle for a GPU machine with neither Go nor network (kernels/cuda/gpucheck/
# run.sh says what it runs): stripped test binaries, the sluice binary and
# the shared test data the GPU tests read, in GPU_CHECK_DIR (under 64 MiB).
# There: GPU_CHECK_DIR/run.sh OUTDIR, which writes OUTDIR/report.json.
GPU_CHECK_DIR ?= bin/gpu-check
GPU_CHECK_MODELS ?= stories260K synth-llama-q8_0 synth-llama-q4_0 synth-llama-q4_k_m synth-llama-q6_k synth-qwen2-q4_0 synth-qwen2-q8_0
SHARED ?= ../shared
gpu-check:
	rm -rf $(GPU_CHECK_DIR)
	mkdir -p $(GPU_CHECK_DIR)/shared/models $(GPU_CHECK_DIR)/shared/golden
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags='-s -w' -o $(GPU_CHECK_DIR)/sluice ./cmd/sluice
	CGO_ENABLED=1 $(GO) test -c -trimpath -ldflags='-s -w' -o $(GPU_CHECK_DIR)/cuda.test ./kernels/cuda
	CGO_ENABLED=1 $(GO) test -c -trimpath -ldflags='-s -w' -o $(GPU_CHECK_DIR)/model.test ./model
	CGO_ENABLED=1 $(GO) test -c -trimpath -ldflags='-s -w' -o $(GPU_CHECK_DIR)/engine.test ./engine
	for m in $(GPU_CHECK_MODELS); do \
		cp $(SHARED)/models/$$m.gguf $(GPU_CHECK_DIR)/shared/models/ && \
		cp $(SHARED)/golden/$$m.jsonl $(GPU_CHECK_DIR)/shared/golden/ || exit 1; \
	done
	cp $(SHARED)/golden/*.txt $(SHARED)/golden/README.md $(GPU_CHECK_DIR)/shared/golden/
	cp kernels/cuda/gpucheck/run.sh $(GPU_CHECK_DIR)/
	@du -sh $(GPU_CHECK_DIR)
