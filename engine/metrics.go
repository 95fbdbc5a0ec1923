package engine

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"zkd/internal/java"
	"zkd/ztree"
)

// summary is one of ZooKeeper's basic summaries (count, sum, least,
// most), which mntr reports as avg_, min_, max_, cnt_ and sum_ of its name
// and the Prometheus endpoint as a summary.
type summary struct {
	mu sync.Mutex
	st ztree.NamespaceStat
}

func (s *summary) add(v int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Add(v)
}

// addSince counts the milliseconds since start.
func (s *summary) addSince(start time.Time) { s.add(time.Since(start).Milliseconds()) }

// merge adds the figures of st, counted elsewhere.
func (s *summary) merge(st ztree.NamespaceStat) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Merge(st)
}

func (s *summary) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = ztree.NamespaceStat{}
}

func (s *summary) get() ztree.NamespaceStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
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
// per-namespace and per-learner ones). zkd keeps no distributions, so the
// summaries have no quantiles.
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
	for name, keys := range sums {
		for key, fig := range keys {
			if key == "" {
				ch <- prometheus.MustNewConstSummary(prometheus.NewDesc(name, name, nil, nil), fig.cnt, fig.total, nil)
				continue
			}
			ch <- prometheus.MustNewConstSummary(prometheus.NewDesc(name, name, []string{"key"}, nil), fig.cnt, fig.total, nil, key)
		}
	}
}
