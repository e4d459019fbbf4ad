# sluice build targets. `make test` is the README's test command and what CI runs.
GO ?= go
BIN ?= bin/sluice
MODEL ?= ../shared/models/stories260K.gguf

.PHONY: build test lint bench fuzz run clean

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/sluice

test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

lint:
	@test -z "$$(gofmt -l .)" || (echo "gofmt needed:"; gofmt -l .; exit 1)
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2x ./...

# Fuzz the GGUF parser for FUZZTIME (default 2m).
FUZZTIME ?= 2m
fuzz:
	$(GO) test ./gguf -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)

run: build
	$(BIN) run -m $(MODEL) -p "Once upon a time"

clean:
	rm -rf bin
