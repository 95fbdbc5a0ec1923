# zkd build and test entry points. `make test` is what CI runs (.ci/run):
# it installs what the tests need, then vets and tests everything.

GO ?= go
# Debian packages the tests drive: the reference server (Apache ZooKeeper 3.8,
# which brings zkCli.sh and the Java client), a JDK for it and for the Curator
# check program, snappy-java for its snappy snapshots, and the real clients
# the engine's tests run: kazoo (with its gevent and eventlet handlers, and
# pure-sasl for its SASL),
# Curator, the C client (cli_mt, load_gen), and what ZooKeeper's AdminServer
# needs (jetty, the servlet API, jackson) for the AdminServer comparisons,
# and systemd-analyze to check the systemd unit.
DEBIAN_PACKAGES := zookeeper default-jdk-headless libsnappy-java python3-kazoo zookeeper-bin \
	libzookeeper-java libcurator-framework-java libcurator-recipes-java python3-gevent python3-eventlet iptables \
	libjetty9-java libservlet-api-java libjackson2-databind-java systemd python3-pure-sasl
# Files whose presence shows the packages are installed.
DEBIAN_MARKERS := /usr/share/java/zookeeper.jar /usr/bin/java /usr/bin/javac /usr/share/java/snappy-java.jar \
	/usr/lib/python3/dist-packages/kazoo/client.py /usr/lib/zookeeper/bin/cli_mt \
	/usr/share/java/curator-framework.jar /usr/share/java/curator-recipes.jar \
	/usr/lib/python3/dist-packages/gevent /usr/lib/python3/dist-packages/eventlet /usr/sbin/iptables \
	/usr/share/java/jetty9-server.jar /usr/share/java/servlet-api.jar /usr/share/java/jackson-databind.jar \
	/usr/bin/systemd-analyze /usr/lib/python3/dist-packages/puresasl
# The Curator check program the engine's tests run, compiled here.
JAVA_CLIENTS := $(CURDIR)/.build/java-clients
JAVA_CP := $(subst $(eval) ,:,$(foreach j,curator-client curator-framework curator-recipes zookeeper zookeeper-jute guava slf4j-api slf4j-nop,/usr/share/java/$(j).jar))
FUZZTIME ?= 60s
FUZZ_TARGETS := wire:FuzzRecord wire:FuzzRequest wire:FuzzReply wire:FuzzTxn wire:FuzzFrameReader wire:FuzzElectionHello wire:FuzzNotification wire:FuzzQuorumPacket wal:FuzzRecovery engine:FuzzParseConfig internal/sasl:FuzzDigestResponse internal/sasl:FuzzDigestChallenge internal/sasl:FuzzDigestExchange internal/sasl:FuzzParseJAAS zab:FuzzFollower

.PHONY: test deps deps-go deps-debian java-clients vet fmt-check unit bench fuzz golden golden-quorum crash-long soak-ensemble sim check-long

test: deps java-clients vet fmt-check unit

deps: deps-go deps-debian

deps-go:
	$(GO) mod download

# Installs the Debian packages only when one is missing, so a prepared
# machine pays nothing. Needs root (CI and the dev machines run as root).
deps-debian:
	@missing=0; for f in $(DEBIAN_MARKERS); do [ -e $$f ] || missing=1; done; \
	if [ $$missing = 1 ]; then \
		echo "installing Debian packages: $(DEBIAN_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null; \
	fi

java-clients: deps-debian
	@mkdir -p $(JAVA_CLIENTS)
	javac -implicit:none -d $(JAVA_CLIENTS) -cp $(JAVA_CP) engine/testdata/clients/CuratorCheck.java \
		engine/testdata/clients/CuratorCacheStress.java engine/testdata/clients/CuratorRolling.java

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# ZKD_REQUIRE_REFERENCE turns "reference server not installed" from a skip
# into a failure: under make, deps-debian has installed it. The engine's
# tests take about 4 minutes on two idle cores and near 9 on two busy ones:
# go test's own 10-minute limit per package would be too close.
# The engine's package goes first: go test starts packages in the order
# given, and the engine's is the longest.
# The wal's crash test cuts the power 100 times under the race detector,
# enough for it to see the store's goroutines at work, and its full 600
# times later without it, six times faster.
# The engine's tests that compare zkd with Apache ZooKeeper's own tools
# and clients, and the rolling replacement: they run beside zkbench
# check's ensembles (below), where they add nothing to make test's time.
# They were measured there: bench/check took 174 s with or without them
# beside it. So do the mixed ensembles' sync and truncation tests (30 s),
# the SNAP under writes (5 s), the learners refused by their leader (8 s)
# or whose dials it swallows (3 s), txns logged and not committed through
# a lost quorum (5 s) and CuratorCache on a follower (10 s),
# which shorten the engine's package, the longest part of make test.
ENGINE_BESIDE_CHECK := ^(TestRollingReplacementOfZooKeeperByZkd|TestSecureClientPortIsZooKeepers|TestAdminServerInAnEnsemble|TestSASLRequiredIsZooKeepers|TestSASLDigestIsZooKeepers|TestZkCliBatchMode|TestCClient|TestAdminServerAnswersAsZooKeeper|TestDifferentialFourLetterWordsInDetail|TestMixedSync|TestMixedTruncate|TestLearnerWhoseLeaderRefusesLooksAgainSoon|TestLearnerConnectToLeaderIsBoundedByConnectToLearnerMasterLimit|TestLoggedUncommittedTxnsAreAppliedBeforeTheNextEpoch|TestZkdLearnerSyncedBySnapUnderWritesCountsNoDigestMismatch|TestEnsembleCuratorCacheOnAFollower)$$

unit:
	ZKD_REQUIRE_REFERENCE=1 ZKD_JAVA_CLIENTS=$(JAVA_CLIENTS) ZKD_CRASH_RUNS=100 $(GO) test -race -count=1 -timeout 15m \
		-skip '$(ENGINE_BESIDE_CHECK)' zkd/engine $$($(GO) list ./... | grep -v -e '/bench/check$$' -e '^zkd/engine$$')
	# zkbench check's ensembles, after the rest: beside the engine's
	# tests they would take the CPU those need for their session timeouts.
	# Beside them, which mostly wait out their faults, one after another:
	# the tests that need no race detector (the engine's allocation counts
	# mean something only without it, 2,000 go-zookeeper sessions pass its
	# limit on goroutines, and the crash test's 600 power cuts), then the
	# engine's ENGINE_BESIDE_CHECK.
	mkdir -p .build; ( $(GO) test -count=1 -run '^(TestReadsAllocateNothing|TestTwoThousandSessionsGetEveryEventAndReplyInOrder)$$' \
		./engine && $(GO) test -count=1 -run '^TestCrashKeepsEveryAcknowledgedTxn$$' ./wal; rc=$$?; \
		ZKD_REQUIRE_REFERENCE=1 ZKD_JAVA_CLIENTS=$(JAVA_CLIENTS) $(GO) test -race -count=1 -timeout 10m \
		-run '$(ENGINE_BESIDE_CHECK)' ./engine || rc=1; exit $$rc ) > .build/beside-check.out 2>&1 & beside=$$!; \
	ZKD_REQUIRE_REFERENCE=1 $(GO) test -race -count=1 -timeout 10m ./bench/check; rc=$$?; \
	wait $$beside || rc=1; cat .build/beside-check.out; exit $$rc

# The crash test with many more power cuts than make test runs (600).
CRASH_RUNS ?= 20000
crash-long:
	ZKD_CRASH_RUNS=$(CRASH_RUNS) $(GO) test -count=1 -timeout 2h -run '^TestCrashKeepsEveryAcknowledgedTxn$$' -v ./wal

# The ensemble fault run with many more steps than make test takes (12),
# the servers built with the race detector; SEED=N repeats a run.
FAULT_STEPS ?= 300
soak-ensemble:
	ZKDTEST_RACE=1 ZKD_FAULT_STEPS=$(FAULT_STEPS) $(if $(SEED),ZKD_FAULT_SEED=$(SEED)) $(GO) test -count=1 -timeout 2h \
		-run '^TestEnsembleRandomFaults$$' -v ./engine

# The in-process simulation of whole ensembles over many more seeds than
# make test takes (1,000); SIM_FIRST=N starts the sweep at seed N (1 by
# default) to try seeds no earlier sweep tried; SIM_SEED=N repeats one, its
# full trace in $TMPDIR/zkd-sim-seed-N.log.
SIM_SEEDS ?= 50000
sim:
	ZKD_SIM_SEEDS=$(SIM_SEEDS) $(if $(SIM_FIRST),ZKD_SIM_FIRST=$(SIM_FIRST)) $(if $(SIM_SEED),ZKD_SIM_SEED=$(SIM_SEED)) $(GO) test -count=1 -timeout 2h \
		-run '^TestSimulatedEnsembles$$' -v ./zab

# zkbench check against zkd ensembles, CHECK_MINUTES of faults each: three
# servers, then five, every workload and every fault (partitions need root
# and iptables); each client waits CHECK_PAUSE between operations;
# CHECK_SEED=N repeats a run. The results are in docs/reliability.md.
# CHECK_IMPL=mixed puts Apache ZooKeeper on the even members; the kills
# and disk faults then hit only the zkd members (ZooKeeper 3.8.0 loses
# data when killed, and has no disk fault hook), and the power cut of
# every member is left out. CHECK_IMPL=zookeeper, the control, has only
# the faults ZooKeeper 3.8.0 passes. CHECK_NEMESIS chooses other faults.
# Each client drops its connection and moves its session to the next
# member about every CHECK_HOP (0: clients stay on their member).
CHECK_MINUTES ?= 30
CHECK_PAUSE ?= 2ms
CHECK_HOP ?= 1s
CHECK_IMPL ?= zkd
check_partitions := pause-leader,pause-follower,partition-leader,partition-follower,partition-halves,partition-bridge,partition-oneway,lossy-links,lossy-clients
check_faults_zkd := all
check_faults_mixed := kill,kill-leader,$(check_partitions),disk-error,disk-stall,power-cut
check_faults_zookeeper := $(check_partitions)
CHECK_NEMESIS ?= $(check_faults_$(CHECK_IMPL))
check-long: deps-debian
	$(GO) build -o .build/zkd ./cmd/zkd
	$(GO) build -o .build/zkbench ./cmd/zkbench
	rm -rf .build/check-3 .build/check-5
	.build/zkbench check --zkd .build/zkd --impl $(CHECK_IMPL) --servers 3 --port 31181 --duration $(CHECK_MINUTES)m \
		--nemesis $(CHECK_NEMESIS) --pause $(CHECK_PAUSE) --hop $(CHECK_HOP) $(if $(CHECK_SEED),--seed $(CHECK_SEED)) --dir .build/check-3
	.build/zkbench check --zkd .build/zkd --impl $(CHECK_IMPL) --servers 5 --port 31281 --duration $(CHECK_MINUTES)m \
		--nemesis $(CHECK_NEMESIS) --pause $(CHECK_PAUSE) --hop $(CHECK_HOP) $(if $(CHECK_SEED),--seed $(CHECK_SEED)) --dir .build/check-5

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./wire ./ztree ./wal ./bench/client

# Fuzzing stays out of `make test`; the seed corpora run there. A target
# that fails only with "context deadline exceeded" and writes no input is
# not a finding: Go 1.26's fuzzing coordinator now and then reports its own
# -fuzztime deadline as a failure (go.dev/issue/75804, fixed in Go 1.27).
fuzz:
	@mkdir -p .build; for pt in $(FUZZ_TARGETS); do \
		p=$${pt%%:*}; t=$${pt#*:}; inputs=$$p/testdata/fuzz/$$t; \
		before=$$(ls $$inputs 2>/dev/null | wc -l); \
		echo "== $$p $$t for $(FUZZTIME)"; \
		{ $(GO) test ./$$p -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME); echo $$? > .build/fuzz.rc; } 2>&1 | tee .build/fuzz.out; \
		[ "$$(cat .build/fuzz.rc)" = 0 ] && continue; \
		if [ "$$(ls $$inputs 2>/dev/null | wc -l)" = "$$before" ] && grep -qx '    context deadline exceeded' .build/fuzz.out \
			&& ! grep -q -- '--- FAIL: .*/' .build/fuzz.out; then \
			echo "== $$t: not a finding (the Go 1.26 fuzzing coordinator's deadline race, go.dev/issue/75804; no input written)"; \
		else \
			echo "== $$t failed; the input is in $$inputs"; exit 1; \
		fi; \
	done

# Re-records the golden wire vectors (needs zookeeper, zookeeper-bin for the
# C client, and python3-kazoo).
golden:
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper zookeeper-bin python3-kazoo >/dev/null
	wire/testdata/capture/capture.sh

# Re-records the server-to-server vectors: a 3-server ZooKeeper ensemble's
# election and quorum ports, through tcpdump on the loopback interface.
golden-quorum:
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper tcpdump >/dev/null
	wire/testdata/capture/quorum.sh
