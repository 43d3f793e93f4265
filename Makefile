# drover — build, demo and test. `make help` lists the targets.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN      := bin

.PHONY: help build demo test vet e2e footprint bench man clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/drover and bin/drover-agent
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/drover ./cmd/drover-agent

demo: build ## run the demo: 3 servers, 5 agents, a signed release rolled out in waves
	$(BIN)/drover demo

test: vet ## vet, then run every test with the race detector
	$(GO) test -race -count=1 -timeout 30m ./...

vet: ## go vet and gofmt
	$(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

e2e: ## multi-host fault tests: 3 servers, 12 agents in Docker containers (root; docs/e2e.md)
	@status=0; DROVER_E2E=1 $(GO) test -count=1 -v -timeout 60m ./e2e/ || status=$$?; \
	  ids=$$(docker ps -aq --filter label=drover-e2e); [ -z "$$ids" ] || docker rm -f -v $$ids >/dev/null; \
	  nets=$$(docker network ls -q --filter label=drover-e2e); [ -z "$$nets" ] || docker network rm $$nets >/dev/null; \
	  imgs=$$(docker images -q --filter label=drover-e2e); [ -z "$$imgs" ] || docker rmi -f $$imgs >/dev/null; \
	  exit $$status

footprint: build ## the agent's static binary size and idle memory
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/drover-agent-static ./cmd/drover-agent
	$(BIN)/drover bench footprint --agent-bin $(BIN)/drover-agent-static

bench: build ## benchmarks and fleet simulator (~20 min, not in test): writes bench/results.md
	$(GO) run ./test/benchreport -bin $(BIN) -out bench $(BENCHFLAGS)

man: build ## manual pages of every command in bin/man (man -l bin/man/drover.1)
	$(BIN)/drover docs man --dir $(BIN)/man

clean: ## remove built binaries
	rm -rf $(BIN)
