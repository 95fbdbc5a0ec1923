package engine

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"zkd/internal/java"
)

// The AdminServer's commands: what ZooKeeper 3.8 serves at
// http://host:8080/commands/<name>, with its names, aliases and JSON
// field names. Each answer is a JSON object: the command's fields, then
// "command" (its primary name) and "error" (null, or what went wrong).

// jsonField is one field of an answer; jsonObject keeps its fields in the
// order they were put, as ZooKeeper's answers (LinkedHashMaps) do.
type jsonField struct {
	key string
	val any
}

type jsonObject []jsonField

func (o *jsonObject) put(key string, val any) {
	for i := range *o {
		if (*o)[i].key == key {
			(*o)[i].val = val
			return
		}
	}
	*o = append(*o, jsonField{key, val})
}

func (o jsonObject) has(key string) bool {
	for _, f := range o {
		if f.key == key {
			return true
		}
	}
	return false
}

// rawNumber is a number written as given: a figure mntr already formats.
type rawNumber string

// writeJSON writes v as Jackson's default pretty printer does, which is
// what ZooKeeper's AdminServer answers with: two-space indents, "key" :
// value, arrays on one line, "{ }" and "[ ]" when empty.
func writeJSON(b *strings.Builder, v any, depth int) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		b.WriteString(`"` + java.JSONQuote(x) + `"`)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int32:
		b.WriteString(strconv.FormatInt(int64(x), 10))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case uint64:
		b.WriteString(strconv.FormatUint(x, 10))
	case float64:
		b.WriteString(java.Double(x))
	case rawNumber:
		b.WriteString(string(x))
	case []any:
		if len(x) == 0 {
			b.WriteString("[ ]")
			return
		}
		b.WriteString("[ ")
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeJSON(b, e, depth)
		}
		b.WriteString(" ]")
	case jsonObject:
		if len(x) == 0 {
			b.WriteString("{ }")
			return
		}
		b.WriteString("{\n")
		for i, f := range x {
			if i > 0 {
				b.WriteString(",\n")
			}
			b.WriteString(strings.Repeat("  ", depth+1))
			b.WriteString(`"` + java.JSONQuote(f.key) + `"`)
			b.WriteString(" : ")
			writeJSON(b, f.val, depth+1)
		}
		b.WriteString("\n")
		b.WriteString(strings.Repeat("  ", depth))
		b.WriteString("}")
	default:
		b.WriteString(`"` + java.JSONQuote(fmt.Sprint(x)) + `"`)
	}
}

// adminCommand is one command: its names (the primary one first), whether
// it needs a serving server, and what it puts in the answer.
type adminCommand struct {
	names   []string
	serving bool
	run     func(s *Server, args url.Values, r *jsonObject)
}

var adminCommands = []adminCommand{
	{[]string{"connection_stat_reset", "crst"}, true, func(s *Server, _ url.Values, _ *jsonObject) {
		for _, c := range s.connList() {
			c.resetStats()
		}
	}},
	{[]string{"configuration", "conf", "config"}, true, func(s *Server, _ url.Values, r *jsonObject) {
		r.put("client_port", s.cfg.ClientPort)
		r.put("data_dir", absVersion2(s.cfg.DataDir))
		r.put("data_log_dir", absVersion2(s.cfg.LogDir()))
		r.put("tick_time", s.cfg.TickTime)
		r.put("max_client_cnxns", s.cfg.MaxClientCnxns)
		r.put("min_session_timeout", s.cfg.MinTimeout())
		r.put("max_session_timeout", s.cfg.MaxTimeout())
		r.put("server_id", s.serverID())
		r.put("client_port_listen_backlog", -1)
	}},
	{[]string{"connections", "cons"}, true, func(s *Server, _ url.Values, r *jsonObject) {
		r.put("connections", s.connectionInfo(false))
		r.put("secure_connections", []any{})
	}},
	{[]string{"hash"}, true, func(s *Server, _ url.Values, r *jsonObject) {
		digests := []any{}
		for _, d := range s.tree.Load().DigestLog() {
			digests = append(digests, jsonObject{{"zxid", d.Zxid}, {"digest_version", int64(2)}, {"digest", int64(d.Digest)}})
		}
		r.put("digests", digests)
	}},
	{[]string{"dirs"}, true, func(s *Server, _ url.Values, r *jsonObject) {
		r.put("datadir_size", dirSize(s.cfg.DataDir))
		r.put("logdir_size", dirSize(s.cfg.LogDir()))
	}},
	{[]string{"dump"}, true, func(s *Server, _ url.Values, r *jsonObject) {
		d := s.sessionDump()
		byDeadline := jsonObject{}
		for _, dl := range d.deadlines {
			if ids := d.byDeadline[dl]; len(ids) > 0 {
				byDeadline.put(strconv.FormatInt(d.wallMinusMono+dl, 10), anySlice(ids))
			}
		}
		ephemerals := jsonObject{}
		for _, id := range d.withEph {
			ephemerals.put(strconv.FormatInt(id, 10), anySlice(d.eph[id]))
		}
		r.put("expiry_time_to_session_ids", byDeadline)
		r.put("session_id_to_ephemeral_paths", ephemerals)
	}},
	{[]string{"environment", "env", "envi"}, false, func(s *Server, _ url.Values, r *jsonObject) {
		for _, kv := range environment() {
			r.put(kv[0], kv[1])
		}
	}},
	{[]string{"get_trace_mask", "gtmk"}, false, func(s *Server, _ url.Values, r *jsonObject) {
		r.put("tracemask", s.traceMask.Load())
	}},
	{[]string{"initial_configuration", "icfg"}, true, func(s *Server, _ url.Values, r *jsonObject) {
		r.put("initial_configuration", s.cfg.Initial)
	}},
	{[]string{"is_read_only", "isro"}, true, func(s *Server, _ url.Values, r *jsonObject) {
		r.put("read_only", s.readOnly.Load() != nil)
	}},
	{[]string{"last_snapshot", "lsnp"}, true, func(s *Server, _ url.Values, r *jsonObject) {
		zxid, at := int64(-1), int64(-1)
		if ls := s.lastSnap.Load(); ls != nil {
			zxid, at = ls.zxid, ls.at.Unix()
		}
		r.put("zxid", strconv.FormatUint(uint64(zxid), 16))
		r.put("timestamp", at)
	}},
	{[]string{"leader", "lead"}, true, func(s *Server, _ url.Values, r *jsonObject) {
		p := s.peer
		if p == nil {
			r.put("error", "server is not initialized")
			return
		}
		id := p.leaderID.Load()
		r.put("is_leader", p.mode() == "leader")
		r.put("leader_id", id)
		ip := ""
		if m, ok := p.member(id); ok && p.mode() != "looking" {
			ip, _, _ = net.SplitHostPort(m.QuorumAddr)
		}
		r.put("leader_ip", ip)
	}},
	{[]string{"monitor", "mntr"}, false, func(s *Server, _ url.Values, r *jsonObject) {
		for _, mv := range s.monitorValues() {
			r.put(strings.TrimPrefix(mv.key, "zk_"), mntrValue(mv.value))
		}
	}},
	{[]string{"observer_connection_stat_reset", "orst"}, true, func(*Server, url.Values, *jsonObject) {}},
	{[]string{"ruok"}, true, func(*Server, url.Values, *jsonObject) {}},
	{[]string{"set_trace_mask", "stmk"}, false, func(s *Server, args url.Values, r *jsonObject) {
		v, ok := args["traceMask"]
		if !ok {
			r.put("error", "setTraceMask requires long traceMask argument")
			return
		}
		mask, err := strconv.ParseInt(v[0], 10, 64)
		if err != nil {
			r.put("error", "setTraceMask requires long traceMask argument, got "+v[0])
			return
		}
		s.traceMask.Store(mask)
		r.put("tracemask", mask)
	}},
	{[]string{"server_stats", "srvr"}, true, func(s *Server, _ url.Values, r *jsonObject) { s.serverStats(r) }},
	{[]string{"stats", "stat"}, true, func(s *Server, _ url.Values, r *jsonObject) {
		s.serverStats(r)
		r.put("connections", s.connectionInfo(true))
		r.put("secure_connections", []any{})
	}},
	{[]string{"stat_reset", "srst"}, true, func(s *Server, _ url.Values, _ *jsonObject) { s.resetStats() }},
	{[]string{"observers", "obsr"}, true, func(s *Server, _ url.Values, r *jsonObject) {
		observers := []any{}
		if p := s.peer; p != nil {
			for _, o := range p.syncedObservers() {
				observers = append(observers, o)
			}
		}
		r.put("synced_observers", len(observers))
		r.put("observers", observers)
	}},
	{[]string{"system_properties", "sysp"}, false, func(s *Server, _ url.Values, r *jsonObject) {
		props := environment()
		props = append(props, [2]string{"file.separator", "/"}, [2]string{"line.separator", "\n"}, [2]string{"path.separator", ":"})
		for k, v := range s.cfg.Extra {
			if strings.HasPrefix(k, "zookeeper.") {
				props = append(props, [2]string{k, redactSecret(k, v)})
			}
		}
		sort.Slice(props, func(i, j int) bool { return props[i][0] < props[j][0] })
		for _, kv := range props {
			r.put(kv[0], kv[1])
		}
	}},
	{[]string{"voting_view"}, true, func(s *Server, _ url.Values, r *jsonObject) {
		view := jsonObject{}
		if p := s.peer; p != nil {
			for _, m := range p.ens.Members {
				if m.Observer {
					continue
				}
				view.put(strconv.FormatInt(m.ID, 10), jsonObject{
					{"server_addresses", []any{m.QuorumAddr}},
					{"election_addresses", []any{m.ElectionAddr}},
					{"client_address", m.ClientAddr},
					{"learner_type", "participant"},
				})
			}
		}
		r.put("current_config", view)
	}},
	{[]string{"watches", "wchc"}, true, func(s *Server, _ url.Values, r *jsonObject) {
		_, sessOrder, pathOrder := s.tree.Load().DataWatchOrder()
		out := jsonObject{}
		ids := make([]int64, 0, len(sessOrder))
		for id := range sessOrder {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			paths := make([]string, 0, len(pathOrder[id]))
			for p := range pathOrder[id] {
				paths = append(paths, p)
			}
			sort.Strings(paths)
			out.put(strconv.FormatInt(id, 10), anySlice(paths))
		}
		r.put("session_id_to_watched_paths", out)
	}},
	{[]string{"watches_by_path", "wchp"}, true, func(s *Server, _ url.Values, r *jsonObject) {
		_, _, sessPaths := s.tree.Load().DataWatchOrder()
		byPath := map[string][]int64{}
		for id, ps := range sessPaths {
			for p := range ps {
				byPath[p] = append(byPath[p], id)
			}
		}
		paths := make([]string, 0, len(byPath))
		for p := range byPath {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		out := jsonObject{}
		for _, p := range paths {
			ids := byPath[p]
			sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
			out.put(p, anySlice(ids))
		}
		r.put("path_to_session_ids", out)
	}},
	{[]string{"watch_summary", "wchs"}, true, func(s *Server, _ url.Values, r *jsonObject) {
		sessions, paths, watches := s.tree.Load().WatchCounts()
		r.put("num_connections", sessions)
		r.put("num_paths", paths)
		r.put("num_total_watches", watches)
	}},
	{[]string{"zabstate"}, false, func(s *Server, _ url.Values, r *jsonObject) {
		p := s.peer
		if p == nil {
			r.put("voting", false)
			r.put("zabstate", "")
			return
		}
		me, _ := p.member(p.ens.MyID)
		zxid := s.view.Load().Zxid()
		r.put("myid", p.ens.MyID)
		r.put("is_leader", p.mode() == "leader")
		r.put("quorum_address", multipleAddresses(me.QuorumAddr))
		r.put("election_address", multipleAddresses(me.ElectionAddr))
		r.put("client_address", s.ln.Addr().String())
		r.put("voting", !me.Observer)
		r.put("last_zxid", fmt.Sprintf("0x%x", zxid))
		r.put("zab_epoch", zxid>>32)
		r.put("zab_counter", zxid&0xffffffff)
		r.put("zabstate", p.zabState())
	}},
}

// adminByName finds a command by any of its names.
var adminByName = func() map[string]*adminCommand {
	m := map[string]*adminCommand{}
	for i := range adminCommands {
		for _, n := range adminCommands[i].names {
			m[n] = &adminCommands[i]
		}
	}
	return m
}()

func anySlice[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// mntrValue is a mntr figure as the monitor command gives it: a number
// when it is one, else a string.
func mntrValue(v string) any {
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return rawNumber(v)
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil && strings.ContainsAny(v, ".E") {
		return rawNumber(v)
	}
	return v
}

func absVersion2(dir string) string {
	p := dir + "/version-2"
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// serverID is ZooKeeper's server id: myid in an ensemble, 0 standalone.
func (s *Server) serverID() int64 {
	if e := s.cfg.Ensemble; e != nil {
		return e.MyID
	}
	return 0
}

// connectionInfo describes the client connections as the connections
// command lists them, or, brief, as the stats command does.
func (s *Server) connectionInfo(brief bool) []any {
	conns := s.connList()
	sort.Slice(conns, func(i, j int) bool { return conns[i].created.Before(conns[j].created) })
	out := []any{}
	for _, c := range conns {
		info := jsonObject{
			{"remote_socket_address", c.remote},
			{"interest_ops", 1},
			{"outstanding_requests", int64(c.queued.Load())},
			{"packets_received", c.received.Load()},
			{"packets_sent", c.sent.Load()},
		}
		if sid := c.sid.Load(); !brief {
			min, avg, max := c.lat.perConnection()
			info = append(info, jsonObject{
				{"session_id", sid},
				{"last_operation", opName(c.lastOp.Load())},
				{"established", c.created.UnixMilli()},
				{"session_timeout", int64(c.timeout.Load())},
				{"last_cxid", int64(c.lastXid.Load())},
				{"last_zxid", c.lastZxid.Load()},
				{"last_response_time", c.lastResponse.Load()},
				{"last_latency", c.lat.last.Load()},
				{"min_latency", min},
				{"avg_latency", avg},
				{"max_latency", max},
			}...)
		}
		out = append(out, info)
	}
	return out
}

// serverStats puts what the server_stats (srvr) command answers.
func (s *Server) serverStats(r *jsonObject) {
	v := s.view.Load()
	min, avg, max := s.stats.lat.figures()
	respStats := jsonObject{
		{"last_buffer_size", s.stats.respLast.Load()},
		{"min_buffer_size", s.stats.respMin.Load()},
		{"max_buffer_size", s.stats.respMax.Load()},
	}
	r.put("version", Version)
	r.put("read_only", s.readOnly.Load() != nil)
	r.put("server_stats", jsonObject{
		{"packets_sent", s.stats.sent.Load()},
		{"packets_received", s.stats.received.Load()},
		{"fsync_threshold_exceed_count", s.stats.fsyncSlow.Load()},
		{"client_response_stats", respStats},
		{"data_dir_size", dirSize(s.cfg.DataDir)},
		{"log_dir_size", dirSize(s.cfg.LogDir())},
		{"provider_null", false},
		{"server_state", s.mode()},
		{"last_processed_zxid", v.Zxid()},
		{"outstanding_requests", s.stats.outstanding.Load()},
		{"avg_latency", java.RoundHalfUp4(avg)},
		{"max_latency", max},
		{"min_latency", min},
		{"num_alive_client_connections", len(s.connList())},
		{"uptime", time.Since(s.started).Milliseconds()},
		{"auth_failed_count", int64(0)},
		{"non_mtlsremote_conn_count", int64(0)},
		{"non_mtlslocal_conn_count", int64(0)},
	})
	r.put("client_response", respStats)
	if p := s.peer; p != nil {
		if _, ok := p.leaderStats(); ok {
			r.put("proposal_stats", jsonObject{
				{"last_buffer_size", int64(-1)},
				{"min_buffer_size", int64(-1)},
				{"max_buffer_size", int64(-1)},
			})
		}
	}
	r.put("node_count", nodeCount(v))
}

// environment is what the environment command lists: ZooKeeper's keys
// where they mean something for a Go process, and the Go runtime's own.
func environment() [][2]string {
	host, _ := os.Hostname()
	wd, _ := os.Getwd()
	name, home := "", ""
	if u, err := user.Current(); err == nil {
		name, home = u.Username, u.HomeDir
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return [][2]string{
		{"zookeeper.version", Version},
		{"host.name", host},
		{"go.version", runtime.Version()},
		{"os.name", runtime.GOOS},
		{"os.arch", runtime.GOARCH},
		{"user.name", name},
		{"user.home", home},
		{"user.dir", wd},
		{"os.memory.total", fmt.Sprintf("%dMB", ms.Sys>>20)},
	}
}

// AdminHandler serves the AdminServer's commands under prefix
// (admin.commandURL, "/commands" by default): the list of commands at
// prefix itself, each command at prefix/<name>, its arguments as query
// parameters. An unknown command is answered as ZooKeeper answers it,
// with a 404 status.
func (s *Server) AdminHandler(prefix string) http.Handler {
	prefix = "/" + strings.Trim(prefix, "/")
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rest, ok := strings.CutPrefix(req.URL.Path, prefix)
		if !ok || rest != "" && rest[0] != '/' {
			http.NotFound(w, req)
			return
		}
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "only GET is served", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(rest, "/")
		if name == "" {
			var b strings.Builder
			names := make([]string, 0, len(adminCommands))
			for _, c := range adminCommands {
				names = append(names, c.names[0])
			}
			sort.Strings(names)
			for _, n := range names {
				fmt.Fprintf(&b, "<a href=\"%s/%s\">%s</a>\n<br/>\n", prefix, n, n)
			}
			w.Header().Set("Content-Type", "text/html;charset=utf-8")
			w.Write([]byte(b.String()))
			return
		}
		status, body := s.runAdmin(name, req.URL.Query())
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	})
}

// runAdmin runs the named command and returns the status and answer.
func (s *Server) runAdmin(name string, args url.Values) (int, string) {
	var r jsonObject
	status := http.StatusOK
	cmd := adminByName[name]
	switch {
	case cmd == nil:
		r = jsonObject{{"command", name}, {"error", "Unknown command: " + name}}
		status = http.StatusNotFound
	case cmd.serving && s.peer != nil && !s.peer.serving.Load() && !s.peer.roServing.Load():
		r = jsonObject{{"command", name}, {"error", "This ZooKeeper instance is not currently serving requests"}}
	default:
		cmd.run(s, args, &r)
		r = append(r, jsonField{"command", cmd.names[0]})
		if !r.has("error") {
			r = append(r, jsonField{"error", nil})
		}
	}
	var b strings.Builder
	writeJSON(&b, r, 0)
	return status, b.String()
}

// zabState is the server's phase as ZooKeeper's zabstate command names
// it: election while looking, synchronization from a leader's election
// until it serves, broadcast after.
func (p *peer) zabState() string {
	switch {
	case role(p.role.Load()) == roleLooking:
		return "election"
	case p.serving.Load():
		return "broadcast"
	}
	return "synchronization"
}

// multipleAddresses describes a server's quorum or election address as
// ZooKeeper's zabstate command does: its address object, with every form
// of the one address zkd has.
func multipleAddresses(addr string) jsonObject {
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return jsonObject{
		{"all_addresses", []any{addr}},
		{"all_host_strings", []any{host}},
		{"all_ports", []any{n}},
		{"all_reachable_addresses", []any{addr}},
		{"all_reachable_addresses_or_all", []any{addr}},
		{"empty", false},
		{"one", addr},
		{"reachable_address", addr},
		{"reachable_or_one", addr},
		{"wildcard_addresses", []any{net.JoinHostPort("0.0.0.0", port)}},
	}
}

// detailedState is the peer state as ZooKeeper's mntr gives it
// (peer_state): the role, and the Zab phase unless looking.
func (p *peer) detailedState() string {
	var state string
	switch p.mode() {
	case "leader":
		state = "leading"
	case "follower":
		state = "following"
	case "observer":
		state = "observing"
	default:
		return "looking"
	}
	return state + " - " + p.zabState()
}

// syncedObservers describes the observers a leader has synced, as the
// observers command lists them; none on a server that does not lead.
func (p *peer) syncedObservers() []jsonObject {
	p.mu.Lock()
	l, fo := p.lead, p.fol
	p.mu.Unlock()
	if fo != nil {
		// A follower's, synced from its port for observers.
		fo.mu.Lock()
		om := fo.om
		fo.mu.Unlock()
		if om != nil {
			return om.info()
		}
	}
	if l == nil || role(p.role.Load()) != roleLeading {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []jsonObject
	for _, lr := range l.learners {
		if !lr.observer || !lr.synced.Load() {
			continue
		}
		// An observer has all the leader committed.
		out = append(out, observerInfo(lr.outbox, lr.pc, lr.sid, lr.established, &lr.received, &lr.requests, l.lastCommitted))
	}
	return out
}

// observerInfo is the observers command's entry for the synced observer
// sid on the connection of o and pc, which connected at established, sent
// received packets (requests of them REQUESTs) and has every txn up to
// last.
func observerInfo(o *outbox, pc *packetConn, sid int64, established time.Time, received, requests *atomic.Int64, last int64) jsonObject {
	queued, queuedBytes := o.queued()
	return jsonObject{
		{"remote_socket_address", pc.c.RemoteAddr().String()},
		{"sid", sid},
		{"established", established.UnixMilli()},
		{"queued_packets", int64(queued)},
		{"queued_packets_size", queuedBytes},
		{"packets_received", received.Load()},
		{"packets_sent", o.sent.Load()},
		{"requests", requests.Load()},
		{"last_zxid", last},
	}
}

// redactSecret hides the value of a setting that holds a password (the
// key stores' and trust stores' among the ssl.* keys): what the
// AdminServer shows anyone who can reach it must not hold one.
func redactSecret(key, val string) string {
	if k := strings.ToLower(key); strings.Contains(k, "password") || strings.Contains(k, "secret") {
		return "******"
	}
	return val
}
