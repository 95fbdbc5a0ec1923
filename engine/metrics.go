package engine

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"zkd/internal/java"
	"zkd/ztree"
)

// summary is one of ZooKeeper's summaries (count, sum, least, most),
// which mntr reports as avg_, min_, max_, cnt_ and sum_ of its name and
// the Prometheus endpoint as a summary, with a sample of its values for
// the quantiles (mntr's percentiles of the ones ZooKeeper gives them,
// the Prometheus endpoint's).
type summary struct {
	mu  sync.Mutex
	st  ztree.NamespaceStat
	res reservoir
}

func (s *summary) add(v int64) {
	s.mu.Lock()
	s.st.Add(v)
	s.mu.Unlock()
	s.res.add(v, 1)
}

// addSince counts the milliseconds since start.
func (s *summary) addSince(start time.Time) { s.add(time.Since(start).Milliseconds()) }

// merge adds the figures of st, counted elsewhere; the caller adds
// their values to the sample.
func (s *summary) merge(st ztree.NamespaceStat) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Merge(st)
}

func (s *summary) reset() {
	s.mu.Lock()
	s.st = ztree.NamespaceStat{}
	s.mu.Unlock()
	s.res.reset()
}

func (s *summary) get() ztree.NamespaceStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// reservoirSize is how many samples a reservoir keeps, as many as
// ZooKeeper 3.8 keeps for its summaries with percentiles.
const reservoirSize = 4096

// reservoir keeps a uniform sample of every value added since it was
// last reset, from which mntr reports the p50, p95, p99 and p999 figures
// of ZooKeeper's summaries with percentiles. The first reservoirSize
// values fill it; value number k after them replaces a slot chosen at
// random with probability reservoirSize/k. Adding takes no lock: one
// atomic add, then a random draw and a store per value.
type reservoir struct {
	count atomic.Int64
	slots atomic.Pointer[[reservoirSize]atomic.Int64] // made at the first add
}

// add counts v n times.
func (r *reservoir) add(v, n int64) {
	if n > 0 {
		r.put(n, func(int64) int64 { return v })
	}
}

// addEach counts each of vs.
func (r *reservoir) addEach(vs []int64) {
	if len(vs) > 0 {
		r.put(int64(len(vs)), func(i int64) int64 { return vs[i] })
	}
}

// put counts n values, the i-th of them value(i).
func (r *reservoir) put(n int64, value func(i int64) int64) {
	seen := r.count.Add(n) - n
	slots := r.slots.Load()
	if slots == nil {
		r.slots.CompareAndSwap(nil, new([reservoirSize]atomic.Int64))
		slots = r.slots.Load()
	}
	// One draw from the runtime seeds a wyrand stream for the run, so a
	// loop's pass that counts many reads at once pays a few nanoseconds
	// a value.
	x := rand.Uint64()
	for i := range n {
		k := seen + 1 + i // the value's number since the reset
		if k <= reservoirSize {
			slots[k-1].Store(value(i))
			continue
		}
		x += 0xa0761d6478bd642f
		hi, lo := bits.Mul64(x, x^0xe7037ed1a0b428db)
		// j is uniform in [0, k), up to a bias of k/2⁶⁴.
		if j, _ := bits.Mul64(hi^lo, uint64(k)); j < reservoirSize {
			slots[j].Store(value(i))
		}
	}
}

func (r *reservoir) reset() {
	r.count.Store(0)
	if r.slots.Load() != nil {
		r.slots.Store(new([reservoirSize]atomic.Int64))
	}
}

// sample is the reservoir's values, sorted.
func (r *reservoir) sample() []int64 {
	slots := r.slots.Load()
	if slots == nil {
		return nil
	}
	vals := make([]int64, min(r.count.Load(), reservoirSize))
	for i := range vals {
		vals[i] = slots[i].Load()
	}
	slices.Sort(vals)
	return vals
}

// quantile is the q-quantile of sorted values as ZooKeeper's metrics
// library estimates it: the position q·(n+1) in the sorted sample,
// between the two values either side of it, 0 for no values.
func quantile(sorted []int64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := q * float64(len(sorted)+1)
	i := int(pos)
	if i < 1 {
		return float64(sorted[0])
	}
	if i >= len(sorted) {
		return float64(sorted[len(sorted)-1])
	}
	lo, hi := float64(sorted[i-1]), float64(sorted[i])
	return lo + (pos-math.Floor(pos))*(hi-lo)
}

// percentileQs are the quantiles mntr reports for a summary with
// percentiles, under their key prefixes.
var percentileQs = []struct {
	prefix string
	q      float64
}{{"zk_p50_", 0.5}, {"zk_p95_", 0.95}, {"zk_p99_", 0.99}, {"zk_p999_", 0.999}}

// percentileFigures are mntr's percentile figures of the reservoir,
// each rounded to a whole number as ZooKeeper rounds it (halves up).
func (r *reservoir) percentileFigures(name string) []monitorValue {
	vals := r.sample()
	out := make([]monitorValue, 0, len(percentileQs))
	for _, p := range percentileQs {
		out = append(out, monitorValue{p.prefix + name, strconv.FormatInt(int64(math.Floor(quantile(vals, p.q)+0.5)), 10)})
	}
	return out
}

// namedSummary is one of the server's summaries under its mntr name:
// its figures, its sample (nil when it keeps none), and whether ZooKeeper
// gives it percentiles (in mntr; three quantiles rather than a median on
// the Prometheus endpoint).
type namedSummary struct {
	name string
	st   ztree.NamespaceStat
	res  *reservoir
	pct  bool
}

// summaryEntry is one of the server's summary-kept figures under its
// mntr name, and whether ZooKeeper gives it percentiles.
type summaryEntry struct {
	name string
	x    *summary
	pct  bool
}

// summaryTable is every figure the server keeps as a summary: what mntr
// and the Prometheus endpoint report, and what srst resets.
func (s *Server) summaryTable() []summaryEntry {
	st := &s.stats
	return []summaryEntry{
		{"election_time", &s.electionTime, false}, {"fsynctime", &s.fsyncTime, false}, {"snapshottime", &s.snapshotTime, false},
		{"quorum_ack_latency", &st.quorumAckLat, true}, {"proposal_latency", &st.proposalLat, true},
		{"commit_propagation_latency", &st.commitPropagateLat, true}, {"proposal_ack_creation_latency", &st.proposalAckLat, true},
		{"unavailable_time", &st.unavailable, false}, {"leader_unavailable_time", &st.leaderUnavailable, false},
		{"follower_sync_time", &st.followerSync, false}, {"observer_sync_time", &st.observerSync, false},
		{"propagation_latency", &st.propagationLat, true}, {"dbinittime", &st.dbInit, false},
		{"startup_snap_load_time", &st.snapLoad, false}, {"startup_txns_loaded", &st.txnsLoaded, false},
		{"startup_txns_load_time", &st.txnsLoadTime, false},
		{"connection_token_deficit", &st.tokenDeficit, false},
		{"inflight_snap_count", &st.inflightSyncs[syncSnap], false}, {"inflight_diff_count", &st.inflightSyncs[syncDiff], false},
	}
}

// summaries are the server's summaries, each under its mntr name: the
// summary table's, the request latencies and the watch fan-out.
func (s *Server) summaries() []namedSummary {
	st := &s.stats
	lat := func(name string, x *pctLatencies) namedSummary { return namedSummary{name, x.summary(), &x.res, true} }
	created, deleted, changed, children := s.tree.Load().WatchFanout()
	out := []namedSummary{lat("readlatency", &st.readLat), lat("updatelatency", &st.updateLat)}
	for _, e := range s.summaryTable() {
		out = append(out, namedSummary{e.name, e.x.get(), &e.x.res, e.pct})
	}
	return append(out,
		namedSummary{name: "node_created_watch_count", st: created}, namedSummary{name: "node_deleted_watch_count", st: deleted},
		namedSummary{name: "node_changed_watch_count", st: changed}, namedSummary{name: "node_children_watch_count", st: children})
}

// summaryFigures are a summary's five mntr figures as ZooKeeper's
// AvgMinMaxCounter gives them, the average rounded to four places, under
// the keys zk_<kind>_<name>.
func summaryFigures(name string, st ztree.NamespaceStat) []monitorValue {
	avg := 0.0
	if st.Count > 0 {
		avg = java.RoundHalfUp4(float64(st.Sum) / float64(st.Count))
	}
	return []monitorValue{{"zk_avg_" + name, java.Double(avg)}, {"zk_min_" + name, strconv.FormatInt(st.Min, 10)},
		{"zk_max_" + name, strconv.FormatInt(st.Max, 10)}, {"zk_cnt_" + name, strconv.FormatInt(st.Count, 10)},
		{"zk_sum_" + name, strconv.FormatInt(st.Sum, 10)}}
}

// zookeeperGauges are the figures ZooKeeper 3.8 registers as gauges; its
// Prometheus provider exports them as gauges under these names. The
// other plain figures of mntr are its counters.
var zookeeperGauges = map[string]bool{}

func init() {
	for _, g := range strings.Fields(`approximate_data_size auth_failed_count avg_latency
		connection_drop_probability ephemerals_count global_sessions last_client_response_size
		last_proposal_size leader_uptime learners local_sessions max_client_response_size
		max_file_descriptor_count max_latency max_proposal_size min_client_response_size
		min_latency min_proposal_size non_mtls_local_conn_count non_mtls_remote_conn_count
		num_alive_connections open_file_descriptor_count outstanding_requests
		outstanding_tls_handshake packets_received packets_sent pending_syncs quorum_size
		synced_followers synced_non_voting_followers synced_observers uptime watch_count
		znode_count`) {
		zookeeperGauges[g] = true
	}
}

// summarySets are ZooKeeper's summaries kept per key (a namespace, a
// learner's id); mntr names each key's figures avg_<key>_<set>, and the
// Prometheus provider labels them key="<key>".
var summarySets = []string{"write_per_namespace", "read_per_namespace",
	"learner_handler_qp_size", "learner_handler_qp_time_ms", "ack_latency"}

var summaryParts = []string{"avg_", "min_", "max_", "cnt_", "sum_", "p50_", "p95_", "p99_", "p999_"}

// PrometheusCollector exports the server's mntr figures under the names
// ZooKeeper's Prometheus metrics provider gives them: gauges, counters,
// and summaries with their _count and _sum (labelled key="..." for the
// per-namespace and per-learner ones). Their quantiles are the ones
// ZooKeeper's provider gives: 0.5, 0.9 and 0.99 for the summaries that
// have percentiles in mntr, the median for the others, taken from the
// summary's sample of every value since the server started or srst,
// where ZooKeeper's provider keeps a sliding window of its own. (The
// summaries per namespace have none: zkd keeps no sample of those.)
func (s *Server) PrometheusCollector() prometheus.Collector { return promCollector{s} }

type promCollector struct{ s *Server }

// Describe sends nothing: the metrics depend on what the server has seen
// (namespaces, learners), which makes this an unchecked collector.
func (promCollector) Describe(chan<- *prometheus.Desc) {}

func (c promCollector) Collect(ch chan<- prometheus.Metric) {
	type sum struct {
		cnt   uint64
		total float64
	}
	sums := map[string]map[string]*sum{} // name → key ("" for a plain summary) → figures
	for _, mv := range c.s.monitorValues() {
		name, v := strings.TrimPrefix(mv.key, "zk_"), mv.value
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			continue // version, server_state, peer_state
		}
		if zookeeperGauges[name] {
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, name, nil, nil), prometheus.GaugeValue, f)
			continue
		}
		part := ""
		for _, p := range summaryParts {
			if strings.HasPrefix(name, p) {
				part = p
				break
			}
		}
		if part == "" {
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, name, nil, nil), prometheus.CounterValue, f)
			continue
		}
		base, key := strings.TrimPrefix(name, part), ""
		for _, set := range summarySets {
			if k, ok := strings.CutSuffix(base, "_"+set); ok {
				base, key = set, k
				break
			}
		}
		if sums[base] == nil {
			sums[base] = map[string]*sum{}
		}
		if sums[base][key] == nil {
			sums[base][key] = &sum{}
		}
		switch part {
		case "cnt_":
			sums[base][key].cnt = uint64(f)
		case "sum_":
			sums[base][key].total = f
		}
	}
	named := map[string]namedSummary{}
	for _, n := range c.s.summaries() {
		named[n.name] = n
	}
	for name, keys := range sums {
		for key, fig := range keys {
			// ZooKeeper's provider gives its summaries with
			// percentiles three quantiles, the others a median.
			var res *reservoir
			advanced := false
			switch sid, err := strconv.ParseInt(key, 10, 64); {
			case key == "":
				if n, ok := named[name]; ok {
					res, advanced = n.res, n.pct
				}
			case err == nil && name == "learner_handler_qp_time_ms":
				res, advanced = &c.s.learnerQueue(sid).time.res, true
			case err == nil && name == "learner_handler_qp_size":
				res = &c.s.learnerQueue(sid).size.res
			}
			var qs map[float64]float64
			if res != nil {
				vals := res.sample()
				qs = map[float64]float64{0.5: quantile(vals, 0.5)}
				if advanced {
					qs[0.9], qs[0.99] = quantile(vals, 0.9), quantile(vals, 0.99)
				}
			}
			if key == "" {
				ch <- prometheus.MustNewConstSummary(prometheus.NewDesc(name, name, nil, nil), fig.cnt, fig.total, qs)
				continue
			}
			ch <- prometheus.MustNewConstSummary(prometheus.NewDesc(name, name, []string{"key"}, nil), fig.cnt, fig.total, qs, key)
		}
	}
}
