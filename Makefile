# Switchyard — run `make help` for the targets.
SHELL := /bin/bash
GO    ?= go
BUF   := tools/node_modules/.bin/buf
# What the tests run besides Go, pinned and installed into the repository by `make test-tools`:
# grpcurl (built from the Go module proxy into tools/bin, not a go.mod dependency) and test/node's
# npm packages (the openai SDK, the Connect client and the protoc-gen-es plugin `make generate` uses).
TOOLS_BIN       := tools/bin
GRPCURL_VERSION := v1.9.4
GRPCURL         := $(TOOLS_BIN)/grpcurl
NODE_E2E        := test/node/node_modules/.package-lock.json
TEST_PATH       := PATH="$(CURDIR)/$(TOOLS_BIN):$$PATH"
BIN   := bin/switchyard
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/switchyard/switchyard/internal/app.Version=$(VERSION)

.PHONY: help run build test test-short test-tools generate check-generate lint breaking fmt vet bench tools

help: ## List targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

run: ## Run the gateway with the embedded default config (mock provider, loopback, no auth)
	$(GO) run ./cmd/switchyard serve $(if $(CONFIG),--config $(CONFIG))

build: ## Build bin/switchyard
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/switchyard

# The edge build (docs/edge-build.md): -tags edge leaves out what one device does not need (the
# list: internal/app/variant_edge.go); static, cross-built for linux/amd64 and linux/arm64.
EDGE_ARCHS := amd64 arm64
.PHONY: build-edge
build-edge: ## Build the edge variant (no AWS SDK, KServe, PostgreSQL): bin/switchyard-edge-linux-{amd64,arm64}
	@set -e; for arch in $(EDGE_ARCHS); do \
	  echo "CGO_ENABLED=0 GOOS=linux GOARCH=$$arch go build -tags edge -o bin/switchyard-edge-linux-$$arch"; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -tags edge -trimpath -ldflags '$(LDFLAGS)' -o bin/switchyard-edge-linux-$$arch ./cmd/switchyard; \
	done

test: test-tools ## Run every test (unit, adapter, end-to-end); installs what they need on first run
	$(TEST_PATH) $(GO) test -count=1 -race ./...

test-short: test-tools ## Fast unit tests only
	$(TEST_PATH) $(GO) test -count=1 -short ./...

test-tools: $(GRPCURL) $(NODE_E2E) ## Install the pinned tools the tests run: tools/bin/grpcurl, test/node/node_modules

# Fuzzing: every func FuzzXxx in a _test.go file, found in the source, one at a time (go test
# -fuzz takes one target). Their seed corpora (f.Add and testdata/fuzz/) also run in make test.
# On a loaded machine go's fuzzing engine sometimes fails a run with "context deadline exceeded"
# while stopping its workers at the end of -fuzztime, with no failing input: such a run is
# repeated once; a run that wrote a failing input fails at once.
FUZZTIME ?= 20s
.PHONY: fuzz
fuzz: ## Run every Fuzz target for FUZZTIME each (default 20s): make fuzz FUZZTIME=1m
	@set -e -o pipefail; for file in $$(grep -rl --include='*_test.go' --exclude-dir=node_modules '^func Fuzz' . | sort); do \
	  for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$file"); do \
	    echo "== $$target ($$(dirname "$$file"), $(FUZZTIME))"; \
	    out=$$(mktemp); \
	    if ! $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) "$$(dirname "$$file")" 2>&1 | tee "$$out"; then \
	      if grep -q 'context deadline exceeded' "$$out" && ! grep -q 'Failing input written' "$$out"; then \
	        echo "== $$target: the fuzzing engine timed out stopping its workers (no failing input): once more"; \
	        $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) "$$(dirname "$$file")"; \
	      else rm -f "$$out"; exit 1; fi; \
	    fi; \
	    rm -f "$$out"; \
	  done; \
	done

tools: $(BUF) ## Install pinned npm tools (buf)

$(BUF): tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund
	@touch $(BUF)

# The stamp names the pinned version, so changing GRPCURL_VERSION rebuilds grpcurl.
$(GRPCURL): $(TOOLS_BIN)/.grpcurl-$(GRPCURL_VERSION)
	GOBIN=$(CURDIR)/$(TOOLS_BIN) $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
	@touch $(GRPCURL)

$(TOOLS_BIN)/.grpcurl-$(GRPCURL_VERSION):
	@mkdir -p $(@D) && rm -f $(@D)/.grpcurl-* && touch $@

$(NODE_E2E): test/node/package.json test/node/package-lock.json
	cd test/node && npm ci --no-audit --no-fund
	@touch $(NODE_E2E)

generate: $(BUF) $(NODE_E2E) ## Regenerate gen/ from proto/, and the Node e2e client in test/node/gen/
	$(BUF) format -w
	$(BUF) generate
	$(BUF) generate --template test/node/buf.gen.yaml

check-generate: generate ## Fail if gen/, test/node/gen/ or proto formatting is stale
	@test -z "$$(git status --porcelain -- test/node/gen/)" || { git status --porcelain -- test/node/gen/; echo "test/node/gen is stale: run make generate and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- gen/ proto/)" || { git status --porcelain -- gen/ proto/; git diff --stat -- gen/ proto/; echo "generated code is stale: run make generate and commit"; exit 1; }

lint: $(BUF) vet ## buf lint, gofmt and go vet
	$(BUF) lint
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); test -z "$$out" || { echo "gofmt needed: $$out"; exit 1; }

breaking: $(BUF) ## buf breaking (WIRE_JSON): every commit that changed proto/ is checked against its parent
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	for c in $$(git log --format=%H -n 50 -- proto/switchyard); do \
	  if git cat-file -e $$c~1:proto/switchyard/v1 2>/dev/null; then \
	    echo "buf breaking: $$(git log -1 --format='%h %s' $$c)"; \
	    rm -rf "$$tmp/new" "$$tmp/old"; mkdir -p "$$tmp/new" "$$tmp/old"; \
	    git archive $$c buf.yaml proto | tar -x -C "$$tmp/new"; \
	    git archive $$c~1 buf.yaml proto | tar -x -C "$$tmp/old"; \
	    (cd "$$tmp/new" && $(CURDIR)/$(BUF) breaking --against "$$tmp/old"); \
	  fi; \
	done
	@if [ -n "$$(git status --porcelain -- proto/switchyard)" ]; then $(BUF) breaking --against '.git#ref=HEAD'; fi

vet: ## go vet
	$(GO) vet ./...

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go' | grep -v '^gen/')

# BIFROST: a bifrost-http binary to compare with (bench/README.md, Bifrost); BENCHFLAGS: more
# gwbench flags, e.g. BENCHFLAGS='-many -out bench.md' for the 2,000-stream scenario too.
BIFROST ?=
BENCHFLAGS ?=
bench: build ## Gateway overhead benchmark (see bench/README.md): make bench BENCHFLAGS='-many' BIFROST=path
	$(GO) run ./bench/cmd/gwbench -binary $(BIN) $(if $(BIFROST),-bifrost $(BIFROST)) $(BENCHFLAGS)

# Leak soak (bench/README.md, Soak): mixed REST/gRPC traffic with upstream faults for DURATION,
# sampled every 10 s; exits non-zero when memory, goroutines or fds grew. Not part of make test.
DURATION ?= 10m
.PHONY: soak
soak: build ## Leak soak for DURATION (default 10m): make soak DURATION=10m SOAKFLAGS='-redis -out soak.md'
	$(GO) run ./bench/cmd/soak -binary $(BIN) -duration $(DURATION) $(SOAKFLAGS)
