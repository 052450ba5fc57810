# omnichat — `make run` brings the service up, `make test` runs the whole suite.
SHELL := /bin/bash
GOBIN ?= $(shell go env GOPATH)/bin
TEMPORAL_VERSION := v1.5.1
TEMPORAL ?= $(GOBIN)/temporal
DATA_DIR ?= .data
# Settings come from the environment and from .env, which bin/omnichat reads
# itself: make and every command in another terminal see the same ones.

.PHONY: lint-openapi fuzz run test test-faults build temporal temporal-dev migrate admin lint workflowcheck bench record-histories clean chromium

build: ## build bin/omnichat
	go build -o bin/omnichat ./cmd/omnichat

$(TEMPORAL):
	@echo "installing the Temporal CLI $(TEMPORAL_VERSION) (first time only, a few minutes)"
	go install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_VERSION)

temporal: $(TEMPORAL) ## install the pinned Temporal CLI if missing

temporal-dev: temporal build ## start a local Temporal dev server when OMNICHAT_TEMPORAL_ADDRESS is the local default and nothing answers
	@TEMPORAL="$(TEMPORAL)" DATA_DIR="$(DATA_DIR)" OMNICHAT_TEMPORAL_ADDRESS="$$(bin/omnichat config OMNICHAT_TEMPORAL_ADDRESS)" scripts/temporal-dev.sh

migrate: build ## create the database if missing and migrate it
	bin/omnichat migrate

run: temporal-dev migrate ## bring the whole service up (API + worker)
	@echo "omnichat on $$(bin/omnichat config OMNICHAT_HTTP_ADDR) (web panel at /); first admin: make admin EMAIL=you@example.com PASSWORD=..."
	bin/omnichat all

admin: build ## create an admin and print a token: make admin EMAIL=you@example.com [PASSWORD=...] (the web panel's sign-in)
	@test -n "$(EMAIL)" || (echo "give the admin's email: make admin EMAIL=you@example.com" && exit 2)
	@if [ -n "$(PASSWORD)" ]; then printf '%s\n' "$(PASSWORD)" | bin/omnichat admin create -email "$(EMAIL)" -password-stdin; \
	else bin/omnichat admin create -email "$(EMAIL)"; fi

chromium: ## install Debian's chromium for the browser tests when it is missing and apt is there
	@if [ ! -x /usr/bin/chromium ] && [ -z "$$OMNICHAT_CHROMIUM" ] && command -v apt-get >/dev/null; then \
		echo "installing chromium for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium || echo "chromium could not be installed: the browser tests will be skipped"; \
	fi

test: temporal chromium ## the whole suite against real PostgreSQL and a Temporal dev server (and Chromium)
	TEMPORAL_CLI="$(TEMPORAL)" go test -p 1 -count=1 -timeout 30m ./...

test-faults: temporal ## the fault suite: real processes killed and paused under a stream of webhooks, and two API replicas (about 5 min)
	OMNICHAT_FAULTS=1 TEMPORAL_CLI="$(TEMPORAL)" go test -count=1 -timeout 15m -v -run 'TestNothingAcknowledgedIsLost|TestTwoServeProcessesDeliverEveryEvent' ./faults

lint: workflowcheck ## go vet, gofmt, staticcheck, workflowcheck
	go vet ./...
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

lint-openapi: ## validate api/openapi.yaml (needs npm)
	npx -y @apidevtools/swagger-cli@4.0.4 validate api/openapi.yaml

workflowcheck: ## Temporal's determinism analyzer over the workflows
	go run go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0 ./workflows/...

record-histories: temporal ## record a new set of histories for the replay tests: make record-histories SET=<release>
	@test -n "$(SET)" || (echo "name the set: make record-histories SET=2026-12-my-change" && exit 2)
	@test ! -e workflows/testdata/histories/$(SET) || (echo "workflows/testdata/histories/$(SET) exists; sets are never re-recorded" && exit 2)
	mkdir -p workflows/testdata/histories/$(SET)
	TEMPORAL_CLI="$(TEMPORAL)" OMNICHAT_RECORD_HISTORIES="$(CURDIR)/workflows/testdata/histories/$(SET)" \
		go test -count=1 -run 'Lifecycle|Restart|Transfer|Idempotency|TelegramInbound|MessengerHandover|TestAction|CompletionTimeoutRaces' ./e2e

FUZZTIME ?= 30s
fuzz: ## fuzz every webhook parser for FUZZTIME each
	for p in apichannel telegram facebook; do go test ./channels/$$p -run '^$$' -fuzz FuzzParseWebhook -fuzztime $(FUZZTIME) || exit 1; done

bench: build ## load-test a running stack (see bin/omnichat bench -h)
	bin/omnichat bench

clean:
	rm -rf bin
