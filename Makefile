# gotorcon — build, test and demo.
#
#   make demo   installs tor and onionbalance when missing, then runs
#               examples/hello offline on a private Tor network on loopback
#               (make demo-balance: examples/balance, Onionbalance, ~2 min).
#   make test   installs tor and onionbalance when missing, then vet, cross-compile checks,
#               brief fuzzing and the race-enabled test suite, inside a
#               loopback-only network namespace where the machine allows one.
#   make bench  prints the control hot-path comparison (raw client, gotorcon,
#               bine) measured in one run against one tor.
#   make stress runs the control fault tests at full size.

GO        ?= go
PKGS      ?= ./...
TESTFLAGS ?= -race -timeout 15m
# FUZZTIME, when set (10s, 50000x), overrides each target's budget in
# .ci/fuzz-targets.
FUZZTIME  ?=

# NETNS runs a command with only a loopback interface when unshare works
# (root, or unprivileged user namespaces); otherwise it runs it as is.
NETNS = $(CURDIR)/.ci/netns

.PHONY: all test demo demo-balance tor mods vet crossbuild unit fuzz bench bench-go stress tidy

all: test

## tor: install tor, its GeoIP databases and onionbalance (Debian) when
## missing. Debian puts onionbalance in /usr/sbin, which is not on every
## user's PATH.
tor:
	@have_tor() { command -v tor >/dev/null 2>&1 && command -v tor-gencert >/dev/null 2>&1; }; \
	have_geoip() { [ -f /usr/share/tor/geoip ]; }; \
	have_ob() { command -v onionbalance >/dev/null 2>&1 || [ -x /usr/sbin/onionbalance ]; }; \
	missing=""; have_tor || missing="tor"; have_geoip || missing="$$missing tor-geoipdb"; have_ob || missing="$$missing onionbalance"; \
	if [ -z "$$missing" ]; then \
		tor --version | head -n 1; echo "onionbalance: $$(command -v onionbalance || echo /usr/sbin/onionbalance)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing$$missing with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null && tor --version | head -n 1; \
	else \
		echo "not installed:$$missing. Install with:  sudo apt-get update && sudo apt-get install -y$$missing" >&2; \
		exit 1; \
	fi

vet:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## crossbuild: the library must build for the other platforms users run.
crossbuild:
	GOOS=windows GOARCH=amd64 $(GO) build $(PKGS)
	GOOS=darwin  GOARCH=arm64 $(GO) build $(PKGS)

## fuzz: brief runs of the fuzz targets (go test -fuzz takes one target at a
## time). Budgets are execution counts (about 10 s each here): a duration
## can fail with a bare "context deadline exceeded" at its end on a loaded
## machine (Go's fuzz coordinator race, golang/go#75804, fixed in Go 1.27).
fuzz:
	@grep -v '^#' .ci/fuzz-targets | while read -r t budget; do \
		[ -n "$$t" ] || continue; \
		pkg=$${t%%:*}; name=$${t##*:}; budget=$${FUZZTIME:-$${budget:-10s}}; \
		echo "fuzz $$pkg $$name ($$budget)"; \
		$(NETNS) $(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $$budget $$pkg </dev/null || exit 1; \
	done

## unit: the test suite, with a TMPDIR of its own that must be empty (and
## no tor of ours running) afterwards.
unit:
	@tmp=$$(mktemp -d /tmp/gotorcon-ci.XXXXXX); \
	TMPDIR=$$tmp $(NETNS) $(GO) test $(TESTFLAGS) $(PKGS); rc=$$?; \
	.ci/leftovers $$tmp || rc=1; \
	rm -rf $$tmp; exit $$rc

## mods: download the modules; NETNS has no network, so every target
## that runs Go inside it depends on this.
mods:
	$(GO) mod download

test: tor mods
	$(MAKE) --no-print-directory vet crossbuild
	$(MAKE) --no-print-directory fuzz
	$(MAKE) --no-print-directory unit

## bench: one run against one tor started for it (unix control socket,
## DisableNetwork 1): a raw client, gotorcon and bine v0.2.0 side by side,
## printed as a table with ratios (control/benchtable_test.go).
bench: tor mods
	cd control && $(NETNS) $(GO) test -count=1 -run '^TestBenchTable$$' -timeout 20m -benchtable

## bench-go: every package's Go benchmarks.
bench-go: tor mods
	$(NETNS) $(GO) test -run '^$$' -bench . -benchmem $(PKGS)

## stress: the control fault tests at full size (1,000,000 events with a
## stalled subscriber, 10,000 cancellations on a real tor, Close races).
stress: tor mods
	cd control && $(NETNS) $(GO) test -count=1 -race -v -run '^TestFault' -timeout 30m -stress

demo: tor mods
	$(NETNS) $(GO) run ./examples/hello

demo-balance: tor mods
	$(NETNS) $(GO) run ./examples/balance
