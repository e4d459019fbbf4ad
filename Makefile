# sluice build targets. `make test` is the README's test command and what CI runs.
GO ?= go
BIN ?= bin/sluice
MODEL ?=
PROMPT ?= Once upon a time

.PHONY: build test lint bench fuzz run serve proto clean sanitize mutate

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/sluice

# The race detector runs over every package with concurrent code or tests:
# the step loop, scheduler and server, and the ones shared across
# goroutines (gguf's lazy array decoding, tokenizer and chat templates,
# the model store, speculation's controller, the CLI's serve). The numeric
# packages run once without it. internal/layout fails when a package whose
# tests start goroutines is missing here.
RACE_PKGS = ./kvcache ./scheduler ./engine ./server ./gguf ./tokenizer ./tokenizer/template ./store ./spec ./cmd/sluice
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -race -count=1 -timeout 15m $(RACE_PKGS)

lint:
	@test -z "$$(gofmt -l .)" || (echo "gofmt needed:"; gofmt -l .; exit 1)
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2x ./...

# Fuzz the GGUF parser for FUZZTIME (default 2m).
FUZZTIME ?= 2m
fuzz:
	$(GO) test ./gguf -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)

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
