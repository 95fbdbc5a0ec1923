package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"zkd/zab/quorum"
)

// DefaultFinalizeWait is zkd.election.finalizeWaitMs when not set: on a
// LAN votes arrive within a millisecond or two, and a failover waits this
// long once, where ZooKeeper's 200 ms is most of its failover time.
const DefaultFinalizeWait = 50 * time.Millisecond

// Member is one server.N line: a server of the ensemble.
type Member struct {
	ID           int64
	QuorumAddr   string // host:port the leader takes followers on
	ElectionAddr string // host:port of leader election
	Observer     bool
	ClientAddr   string // host:port after ';', "" when the line gives none
	Line         int    // where in the file it was given
}

// Ensemble is the ensemble a configuration describes, and this server's
// place in it.
type Ensemble struct {
	Members []Member // by id
	MyID    int64
	// InitLimit and SyncLimit are in ticks: how long a follower may take
	// to connect and sync, and how far it may fall behind.
	InitLimit, SyncLimit int
	// ConnectLimit is connectToLearnerMasterLimit, in ticks: how long a
	// learner may take to connect to its leader; InitLimit when 0 or
	// less, as ZooKeeper's.
	ConnectLimit int
	// ListenOnAllIPs is quorumListenOnAllIPs: the quorum and election
	// ports listen on every address, not only the server.N line's.
	ListenOnAllIPs bool
	// ConnectTimeout is cnxTimeout: how long a dial to another server's
	// election port may take.
	ConnectTimeout time.Duration
	// BindRetry is electionPortBindRetry: how many more times to try
	// binding the election port, a second apart.
	BindRetry int
	// SnapshotSizeFactor is zookeeper.snapshotSizeFactor: a follower is
	// sent txns from the log (DIFF) while they come to at most this share
	// of the newest snapshot's size, else the snapshot (SNAP); below zero,
	// always the snapshot.
	SnapshotSizeFactor float64
	// CommitLogCount is commitLogCount: how many of the newest committed
	// txns the leader keeps track of to sync a follower from (DIFF).
	CommitLogCount int
	// MaxSnapSyncs and MaxDiffSyncs are leader.maxConcurrentSnapSyncs and
	// leader.maxConcurrentDiffSyncs: how many learners the leader syncs
	// at once by SNAP, and by DIFF or TRUNC, before it turns observers
	// away (followers are never turned away, and count).
	MaxSnapSyncs, MaxDiffSyncs int
	// ObserverElectionDelay is observer.election.DelayMs: an observer
	// that loses its leader waits a random time below it before it looks
	// for one again.
	ObserverElectionDelay time.Duration
	// MinNotificationInterval and MaxNotificationInterval are
	// fastleader.minNotificationInterval and
	// fastleader.maxNotificationInterval: an election waits this long at
	// first for a notification before it sends its vote again, and twice
	// as long each time nothing comes, up to the second.
	MinNotificationInterval, MaxNotificationInterval time.Duration
	// ObserverMasterPort is observerMasterPort: while a participant
	// follows, it takes observers on this port of its quorum address and
	// relays the leader's commits to them; observers sync from a
	// follower's port, not the leader's. 0 when unset.
	ObserverMasterPort int
	// FinalizeWait is zkd.election.finalizeWaitMs: how long a vote a
	// quorum agrees on must stand, no better vote arriving, before the
	// server decides. ZooKeeper's is a constant 200 ms; it only affects
	// which server leads when votes arrive late, never safety.
	FinalizeWait time.Duration
	// ConfigVersion is the configuration's version: 0 for one in
	// zoo.cfg, the dynamic config file's otherwise.
	ConfigVersion int64
	// Quorum says which sets of participants are quorums: a majority,
	// or ZooKeeper's hierarchical quorums when group.N lines are given.
	// nil is a majority.
	Quorum *quorum.Quorum
}

// quorum is e.Quorum, or a majority of the participants.
func (e *Ensemble) quorum() *quorum.Quorum {
	if e.Quorum != nil {
		return e.Quorum
	}
	return quorum.Majority(votersOf(e.Members))
}

// votersOf are the ids of the participants among members.
func votersOf(members []Member) []int64 {
	var voters []int64
	for _, m := range members {
		if !m.Observer {
			voters = append(voters, m.ID)
		}
	}
	return voters
}

// quorumOf reads the group.N and weight.N lines (ZooKeeper's hierarchical
// quorums: group.1=1:2:3, weight.2=3) into the ensemble's quorum; without
// them a quorum is a majority of the participants. A mistake is named by
// file, line and key.
func (c *Config) quorumOf(members []Member) (*quorum.Quorum, error) {
	bad := func(key string, format string, args ...any) error {
		return &ConfigError{File: c.fileOf(key), Line: c.Lines[key], Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	voters := votersOf(members)
	var keys []string
	for k := range c.Extra {
		if strings.HasPrefix(k, "group.") || strings.HasPrefix(k, "weight.") {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return quorum.Majority(voters), nil
	}
	// In file order, so that the first mistake is the one named.
	sort.Slice(keys, func(i, j int) bool {
		if c.fileOf(keys[i]) != c.fileOf(keys[j]) {
			return c.fileOf(keys[i]) == c.File
		}
		return c.Lines[keys[i]] < c.Lines[keys[j]]
	})
	groups, weights := map[int64][]int64{}, map[int64]int64{}
	inGroup := map[int64]string{}
	for _, k := range keys {
		name, num, _ := strings.Cut(k, ".")
		id, err := strconv.ParseInt(num, 10, 64)
		if err != nil || id < 0 {
			return nil, bad(k, "%q is not a %s id", num, map[string]string{"group": "group", "weight": "server"}[name])
		}
		v := strings.TrimSpace(c.Extra[k])
		if name == "weight" {
			w, err := strconv.ParseInt(v, 10, 64)
			if err != nil || w < 0 {
				return nil, bad(k, "%q is not a weight (0 or more)", v)
			}
			weights[id] = w
			continue
		}
		for _, part := range strings.Split(v, ":") {
			sid, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64)
			if err != nil {
				return nil, bad(k, "%q is not a list of server ids joined by ':' (group.1=1:2:3)", v)
			}
			if other, ok := inGroup[sid]; ok {
				return nil, bad(k, "server %d is in %s too; a server is in one group", sid, other)
			}
			inGroup[sid] = k
			groups[id] = append(groups[id], sid)
		}
	}
	for _, m := range members {
		if _, ok := inGroup[m.ID]; !ok && !m.Observer {
			key := fmt.Sprintf("server.%d", m.ID)
			return nil, &ConfigError{File: c.fileOf(key), Line: m.Line, Key: key,
				Msg: "is a participant in no group.N line; with hierarchical quorums every participant is in a group"}
		}
	}
	q, err := quorum.Hierarchical(voters, groups, weights)
	if err != nil {
		return nil, bad(keys[0], "%v", err)
	}
	return q, nil
}

// Me is this server's member, ok false when the server.N lines have none.
func (e *Ensemble) Me() (m Member, ok bool) {
	for _, m := range e.Members {
		if m.ID == e.MyID {
			return m, true
		}
	}
	return Member{}, false
}

// parseMember reads a server.N value:
// host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort].
func parseMember(id int64, spec string) (Member, error) {
	m := Member{ID: id}
	server, client, hasClient := strings.Cut(spec, ";")
	server = strings.TrimSpace(server)
	if strings.Contains(server, "|") {
		return m, errors.New("several addresses for one server (zookeeper.multiAddress.enabled) are not supported; give one host:quorumPort:electionPort")
	}
	host, rest, err := splitHost(server)
	if err != nil {
		return m, err
	}
	parts := strings.Split(rest, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return m, fmt.Errorf("%q is not host:quorumPort:electionPort[:participant|:observer]", spec)
	}
	qp, err := port(parts[0], "quorum port")
	if err != nil {
		return m, err
	}
	ep, err := port(parts[1], "election port")
	if err != nil {
		return m, err
	}
	if qp == ep {
		return m, fmt.Errorf("the quorum port and the election port are both %d", qp)
	}
	if len(parts) == 3 {
		switch strings.ToLower(strings.TrimSpace(parts[2])) {
		case "participant":
		case "observer":
			m.Observer = true
		default:
			return m, fmt.Errorf("%q is neither participant nor observer", parts[2])
		}
	}
	m.QuorumAddr = net.JoinHostPort(host, strconv.Itoa(qp))
	m.ElectionAddr = net.JoinHostPort(host, strconv.Itoa(ep))
	if hasClient {
		addr, cport, ok := clientSpec(spec)
		if !ok {
			return m, fmt.Errorf("%q after ';' is not [clientHost:]clientPort", strings.TrimSpace(client))
		}
		if addr == "" {
			addr = "0.0.0.0"
		}
		m.ClientAddr = net.JoinHostPort(strings.Trim(addr, "[]"), strconv.Itoa(cport))
	}
	return m, nil
}

// splitHost takes the host off "host:rest" or "[v6]:rest".
func splitHost(s string) (host, rest string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]:")
		if end < 0 {
			return "", "", fmt.Errorf("%q: an IPv6 address needs [brackets] followed by :ports", s)
		}
		return s[1:end], s[end+2:], nil
	}
	host, rest, ok := strings.Cut(s, ":")
	if !ok || host == "" {
		return "", "", fmt.Errorf("%q is not host:quorumPort:electionPort", s)
	}
	return host, rest, nil
}

func port(s, what string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("the %s %q is not a port number (1-65535)", what, s)
	}
	return p, nil
}

// ensemble checks the server.N lines and the settings that go with them,
// and reads dataDir/myid: every mistake is an error naming the file, line
// and key, before anything is started. It is called for a configuration
// with more than one server.N line or standaloneEnabled=false.
func (c *Config) ensemble(serverLines map[int]int) (*Ensemble, error) {
	e := &Ensemble{InitLimit: 10, SyncLimit: 5, ConfigVersion: c.ConfigVersion}
	bad := func(key string, format string, args ...any) error {
		return &ConfigError{File: c.fileOf(key), Line: c.Lines[key], Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	for key, dst := range map[string]*int{"initLimit": &e.InitLimit, "syncLimit": &e.SyncLimit} {
		if v, ok := c.Extra[key]; ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n <= 0 {
				return nil, bad(key, "%q is not a positive number of ticks", v)
			}
			*dst = n
		}
	}
	e.ConnectTimeout, e.BindRetry, e.SnapshotSizeFactor, e.CommitLogCount = 5*time.Second, 3, 0.33, 500
	e.MaxSnapSyncs, e.MaxDiffSyncs, e.ObserverElectionDelay = 10, 100, 200*time.Millisecond
	e.MinNotificationInterval, e.MaxNotificationInterval = 200*time.Millisecond, 60*time.Second
	e.FinalizeWait = DefaultFinalizeWait
	// setting finds a key ZooKeeper also reads as the system property
	// zookeeper.<name>; that spelling wins, as the later line did.
	setting := func(name string) (key, val string, ok bool) {
		for _, k := range []string{"zookeeper." + name, name} {
			if v, found := c.Extra[k]; found {
				return k, strings.TrimSpace(v), true
			}
		}
		return "", "", false
	}
	intSetting := func(name string, least int, want string, set func(int)) error {
		key, v, ok := setting(name)
		if !ok {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < least {
			return bad(key, "%q is not %s", v, want)
		}
		set(n)
		return nil
	}
	for _, err := range []error{
		intSetting("commitLogCount", 1, "a positive number of txns", func(n int) { e.CommitLogCount = n }),
		intSetting("cnxTimeout", 1, "a positive number of milliseconds", func(n int) { e.ConnectTimeout = time.Duration(n) * time.Millisecond }),
		intSetting("electionPortBindRetry", 0, "a number of retries (0 or more)", func(n int) { e.BindRetry = n }),
		intSetting("leader.maxConcurrentSnapSyncs", 1, "a positive number of syncs", func(n int) { e.MaxSnapSyncs = n }),
		intSetting("leader.maxConcurrentDiffSyncs", 1, "a positive number of syncs", func(n int) { e.MaxDiffSyncs = n }),
		intSetting("fastleader.minNotificationInterval", 1, "a positive number of milliseconds", func(n int) {
			e.MinNotificationInterval = time.Duration(n) * time.Millisecond
		}),
		intSetting("fastleader.maxNotificationInterval", 1, "a positive number of milliseconds", func(n int) {
			e.MaxNotificationInterval = time.Duration(n) * time.Millisecond
		}),
		intSetting("observer.election.DelayMs", 0, "a number of milliseconds (0 or more)", func(n int) {
			e.ObserverElectionDelay = time.Duration(n) * time.Millisecond
		}),
	} {
		if err != nil {
			return nil, err
		}
	}
	if e.MinNotificationInterval > e.MaxNotificationInterval {
		key, _, _ := setting("fastleader.minNotificationInterval")
		if key == "" {
			key, _, _ = setting("fastleader.maxNotificationInterval")
		}
		return nil, bad(key, "the first wait for notifications (%v) is longer than the longest (%v)",
			e.MinNotificationInterval, e.MaxNotificationInterval)
	}
	if v, ok := c.Extra["connectToLearnerMasterLimit"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return nil, bad("connectToLearnerMasterLimit", "%q is not a number of ticks", v)
		}
		e.ConnectLimit = n
	}
	if v, ok := c.Extra["zkd.election.finalizeWaitMs"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n <= 0 {
			return nil, bad("zkd.election.finalizeWaitMs", "%q is not a positive number of milliseconds", v)
		}
		e.FinalizeWait = time.Duration(n) * time.Millisecond
	}
	if v, ok := c.Extra["observerMasterPort"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n <= 0 || n > 65535 {
			return nil, bad("observerMasterPort", "%q is not a port number", v)
		}
		e.ObserverMasterPort = n
	}
	if v, ok := c.Extra["quorumListenOnAllIPs"]; ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return nil, bad("quorumListenOnAllIPs", "%q is neither true nor false", v)
		}
		e.ListenOnAllIPs = b
	}
	if key, v, ok := setting("snapshotSizeFactor"); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, bad(key, "%q is not a number", v)
		}
		e.SnapshotSizeFactor = f
	}
	if v, ok := c.Extra["electionAlg"]; ok && strings.TrimSpace(v) != "3" {
		// ZooKeeper 3.8 has only fast leader election (3) and will not
		// start with another.
		return nil, bad("electionAlg", "%q: only 3 (fast leader election) is left in ZooKeeper 3.8, and zkd runs only that; remove the line or set 3", v)
	}
	if c.ReconfigEnabled {
		return nil, bad("reconfigEnabled", "dynamic reconfiguration is not supported yet; remove reconfigEnabled=true and change the ensemble by editing every server's zoo.cfg and restarting them one at a time")
	}
	var err error
	ids := make([]int, 0, len(c.Servers))
	for id := range c.Servers {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	used := map[string]string{} // address -> the key that took it
	voters := 0
	for _, id := range ids {
		key := fmt.Sprintf("server.%d", id)
		m, err := parseMember(int64(id), c.Servers[id])
		if err != nil {
			return nil, &ConfigError{File: c.fileOf(key), Line: serverLines[id], Key: key, Msg: err.Error()}
		}
		m.Line = serverLines[id]
		for _, a := range []string{m.QuorumAddr, m.ElectionAddr} {
			if other, taken := used[a]; taken {
				return nil, &ConfigError{File: c.fileOf(key), Line: m.Line, Key: key,
					Msg: fmt.Sprintf("%s is also given to %s; every server needs ports of its own", a, other)}
			}
			used[a] = key
		}
		if !m.Observer {
			voters++
		}
		e.Members = append(e.Members, m)
	}
	if voters == 0 {
		return nil, &ConfigError{File: c.fileOf("server.N"), Line: serverLines[ids[0]], Key: "server.N",
			Msg: "every server is an observer; an ensemble needs participants to vote"}
	}
	if e.Quorum, err = c.quorumOf(e.Members); err != nil {
		return nil, err
	}
	myid, err := readMyID(c.DataDir)
	if err != nil {
		// The myid file lives in dataDir: point at that line.
		return nil, &ConfigError{File: c.File, Line: c.Lines["dataDir"], Key: "dataDir", Msg: err.Error()}
	}
	e.MyID = myid
	me, ok := e.Me()
	if !ok {
		return nil, &ConfigError{File: c.fileOf("server.N"), Line: serverLines[ids[0]], Key: "server.N",
			Msg: fmt.Sprintf("%s says this is server %d, and there is no server.%d line; the myid file and the server.N lines must agree",
				filepath.Join(c.DataDir, "myid"), myid, myid)}
	}
	if pt, ok := c.Extra["peerType"]; ok {
		switch strings.ToLower(strings.TrimSpace(pt)) {
		case "observer", "participant":
			if (strings.ToLower(strings.TrimSpace(pt)) == "observer") != me.Observer {
				return nil, bad("peerType", "is %s, and server.%d says otherwise; make them agree", pt, myid)
			}
		default:
			return nil, bad("peerType", "%q is neither participant nor observer", pt)
		}
	}
	return e, nil
}

// readMyID reads dataDir/myid: the server's id, as ZooKeeper reads it.
func readMyID(dataDir string) (int64, error) {
	p := filepath.Join(dataDir, "myid")
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%s is missing; an ensemble member needs it: write the number of this server's server.N line into it (echo N > %s)", p, p)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p, err)
	}
	id, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || id < 0 {
		return 0, fmt.Errorf("%s holds %q, which is not a server id (a number)", p, strings.TrimSpace(string(b)))
	}
	return id, nil
}
