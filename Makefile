# sluice build targets. `make test` is the README's test command and what CI runs.
GO ?= go
BIN ?= bin/sluice
MODEL ?=
PROMPT ?= Once upon a time

.PHONY: build test lint bench fuzz run serve proto clean gpu-check

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/sluice

# The race detector runs over the concurrent packages (step loop, scheduler,
# server); the numeric packages run once without it.
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -race -count=1 -timeout 10m ./kvcache ./scheduler ./engine ./server

lint:
	@test -z "$$(gofmt -l .)" || (echo "gofmt needed:"; gofmt -l .; exit 1)
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2x ./...

# Fuzz the GGUF parser for FUZZTIME (default 2m).
FUZZTIME ?= 2m
fuzz:
	$(GO) test ./gguf -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)

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
