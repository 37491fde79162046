# SIS Bridge. Needs only Go; everything else a target needs, it installs.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Packages whose tests exercise concurrency run under the race detector.
PKGS        ?= ./...
TESTFLAGS   ?= -count=1 -timeout 20m
BENCHFLAGS  ?= -run '^$$' -bench . -benchmem -benchtime 2s

.PHONY: run test test-cluster bench lint build fuzz chaos soak screenshots clean

## run: the whole system on this machine (embedded NATS, simulated router,
## adapter); Ctrl-C stops it cleanly (the binary, not `go run`, gets the
## signal: `go run` exits 1 on one, which make would report as an error)
RUNFLAGS ?=
run: build
	exec bin/sisbridge run $(RUNFLAGS)

## test: every test, with the race detector (the topology test, nine
## processes and 50 clients, after the others rather than beside them);
## then every fuzz target for 2,000 executions (their seed corpora, testdata/fuzz
## included, run in the tests). The wallboard's browser tests keep their
## screenshots in $(SCREENSHOTS).
SCREENSHOTS ?= $(CURDIR)/artifacts/wallboard
test:
	rm -rf $(SCREENSHOTS)
	WALLBOARD_SCREENSHOTS=$(SCREENSHOTS) $(GO) test -race $(TESTFLAGS) $$($(GO) list $(PKGS) | grep -v /internal/topology)
	$(GO) test -race $(TESTFLAGS) ./internal/topology
	@$(MAKE) --no-print-directory fuzz FUZZTIME=2000x FUZZMINIMIZE=200x

## test-cluster: the topology test alone (internal/topology): three
## nats-server nodes, two adapters, two gateways and HAProxy as processes,
## broken in turn under 50 clients (docs/scaling.md); part of make test
test-cluster:
	$(GO) test -race -count=1 -v -run '^TestTopology$$' ./internal/topology

## bench: the benchmarks on the hot paths; figures in the closing notes and docs/benchmarks.md
bench:
	$(GO) test $(BENCHFLAGS) $(PKGS)

## lint: gofmt, go vet and staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

## fuzz: each fuzz target for FUZZTIME (default 30s); an input that finds
## new coverage is minimized for at most FUZZMINIMIZE (go test's default,
## 60s, spent a whole run of replay's FuzzReader minimizing its first finds).
## make test gives counts (2000x), not durations: Go 1.26's fuzzing
## reports a target whose time ran out under load as failed, "context
## deadline exceeded" (golang/go#75804, fixed in Go 1.27)
FUZZTIME ?= 30s
FUZZMINIMIZE ?= 2s
fuzz:
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs grep -H '^func Fuzz' | sed -E 's|^\./([^:]*)/[^/]*:func (Fuzz[A-Za-z0-9_]*).*|\1:\2|' | sort -u); do \
		pkg=$${spec%%:*}; fn=$${spec##*:}; echo "== $$pkg $$fn"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./$$pkg || exit 1; \
	done

## chaos: the gateway's randomized test (bridge/chaos_test.go) on CHAOS_SEEDS
## (a comma-separated list, random or random:N), CHAOS_DURATION each; a
## failure prints its seed and the command that runs it again
CHAOS_SEEDS    ?= random:3
CHAOS_DURATION ?= 2m
chaos:
	SIS_CHAOS_SEEDS=$(CHAOS_SEEDS) SIS_CHAOS_DURATION=$(CHAOS_DURATION) $(GO) test -race -count=1 -timeout 0 -run '^TestChaos$$' ./bridge

## soak: the router adapter and two gateways (bin/sisbridge processes) for
## DURATION under churning clients, the simulator at a high rate, one
## gateway restarted every 2 minutes; a table every 30 s; fails on any
## broken promise or on memory, goroutines or open files that keep growing
## (docs/security.md, "Soak"). Not part of make test. SOAKFLAGS adds flags
## of sisload soak.
DURATION  ?= 10m
SOAKFLAGS ?=
soak: build
	$(GO) build -o bin/sisload ./cmd/sisload
	bin/sisload soak --sisbridge bin/sisbridge --duration $(DURATION) $(SOAKFLAGS)

## screenshots: the wallboard of a simulated contact center, light and
## dark, and a group's session list, as docs/ shows them (from
## TestBrowserWallOfTheSimulator; needs Chromium)
screenshots:
	rm -rf $(SCREENSHOTS)
	WALLBOARD_SCREENSHOTS=$(SCREENSHOTS) SIS_REQUIRE_ALL=1 $(GO) test -count=1 -run '^TestBrowserWallOfTheSimulator$$' ./wallboard
	cp $(SCREENSHOTS)/TestBrowserWallOfTheSimulator-wall.png docs/wallboard.png
	cp $(SCREENSHOTS)/TestBrowserWallOfTheSimulator-wall-dark.png docs/wallboard-dark.png
	cp $(SCREENSHOTS)/TestBrowserWallOfTheSimulator-list.png docs/wallboard-list.png

## build: the binary in bin/
build:
	$(GO) build -buildvcs=auto -o bin/sisbridge ./cmd/sisbridge

clean:
	rm -rf bin sisbridge-data artifacts
