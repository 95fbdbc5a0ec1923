package election

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"zkd/wire"
	"zkd/zab/internal/script"
)

// Scenario files (testdata/*.txt) drive a simulated ensemble of elections
// over a network that delivers every message, in order, unless a server is
// down. Each block is a command, a line of dashes, and the output the
// command must produce: the notifications sent and the decisions made.
// `go test ./zab/election -rewrite` writes the outputs the code produces
// back into the files (then read the diff).
//
// Commands:
//
//	servers 1 2 3 [observers 4]   the ensemble (every election shares it)
//	start ID zxid=Z epoch=E       server ID starts an election
//	deliver                       deliver messages until none are in flight
//	tick D                        the clock moves D; every server ticks
//	run [for=D]                   deliver, and tick to the next deadline, until no server is LOOKING, D has passed or 100 rounds
//	crash ID                      server ID stops; messages to it are lost
//	epoch ID E                    server ID synced to epoch E (its vote's peer epoch)
//	state                         every server's state and vote

var rewrite = flag.Bool("rewrite", false, "write the scenarios' actual outputs into testdata")

type envelope struct {
	from, to int64
	n        wire.Notification
}

type sim struct {
	voters, observers []int64
	nodes             map[int64]*Election
	up                map[int64]bool
	queue             []envelope
	now               time.Duration
	out               strings.Builder
}

func (s *sim) ids() []int64 {
	ids := make([]int64, 0, len(s.nodes))
	for id := range s.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func vote(n wire.Notification) string {
	return fmt.Sprintf("leader=%d zxid=%#x round=%d peerEpoch=%d", n.Leader, n.Zxid, n.ElectionEpoch, n.PeerEpoch)
}

// collect queues and prints what server id's last input asked for.
func (s *sim) collect(id int64) {
	r := s.nodes[id].Ready()
	for _, m := range r.Messages {
		fmt.Fprintf(&s.out, "%d -> %d: %s %s\n", id, m.To, m.N.State, vote(m.N))
		s.queue = append(s.queue, envelope{id, m.To, m.N})
	}
	if r.Decided {
		fmt.Fprintf(&s.out, "%d decides %s: leader=%d zxid=%#x round=%d peerEpoch=%d\n",
			id, r.State, r.Vote.Leader, r.Vote.Zxid, r.Vote.ElectionEpoch, r.Vote.PeerEpoch)
	}
}

func (s *sim) deliver() {
	for steps := 0; len(s.queue) > 0; steps++ {
		if steps > 10_000 {
			fmt.Fprintf(&s.out, "still %d messages in flight after 10000\n", len(s.queue))
			return
		}
		m := s.queue[0]
		s.queue = s.queue[1:]
		if !s.up[m.to] {
			continue
		}
		s.nodes[m.to].Step(s.now, m.from, m.n)
		s.collect(m.to)
	}
}

// deadline is the earliest time a live server asked to be ticked at.
func (s *sim) deadline() (time.Duration, bool) {
	var best time.Duration
	found := false
	for _, id := range s.ids() {
		if !s.up[id] {
			continue
		}
		if d := s.nodes[id].Ready().Deadline; d > 0 && (!found || d < best) {
			best, found = d, true
		}
	}
	return best, found
}

func (s *sim) tickAll() {
	for _, id := range s.ids() {
		if s.up[id] {
			s.nodes[id].Tick(s.now)
			s.collect(id)
		}
	}
}

func (s *sim) looking() bool {
	for _, id := range s.ids() {
		if s.up[id] && s.nodes[id].State() == wire.StateLooking {
			return true
		}
	}
	return false
}

func parseIDs(fields []string) ([]int64, error) {
	var ids []int64
	for _, f := range fields {
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func keyed(fields []string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want key=value", f)
		}
		n, err := strconv.ParseInt(v, 0, 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", f, err)
		}
		out[k] = n
	}
	return out, nil
}

func (s *sim) node(arg string) (int64, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || s.nodes[id] == nil {
		return 0, fmt.Errorf("no server %q", arg)
	}
	return id, nil
}

func (s *sim) run(cmd string) error {
	f := strings.Fields(cmd)
	switch f[0] {
	case "servers":
		i := slices.Index(f, "observers")
		if i < 0 {
			i = len(f)
		}
		voters, err := parseIDs(f[1:i])
		if err != nil {
			return err
		}
		var observers []int64
		if i < len(f) {
			if observers, err = parseIDs(f[i+1:]); err != nil {
				return err
			}
		}
		s.voters, s.observers = voters, observers
		s.nodes, s.up = map[int64]*Election{}, map[int64]bool{}
		for _, id := range append(slices.Clone(voters), observers...) {
			s.nodes[id] = New(Config{ID: id, Voters: voters, QuorumConfig: "version=0"})
		}
	case "start":
		if len(f) < 2 {
			return fmt.Errorf("start ID zxid=Z epoch=E")
		}
		id, err := s.node(f[1])
		if err != nil {
			return err
		}
		kv, err := keyed(f[2:])
		if err != nil {
			return err
		}
		s.up[id] = true
		s.nodes[id].Start(s.now, kv["zxid"], kv["epoch"])
		s.collect(id)
	case "deliver":
		s.deliver()
	case "tick":
		d, err := time.ParseDuration(f[1])
		if err != nil {
			return err
		}
		s.now += d
		fmt.Fprintf(&s.out, "now %v\n", s.now)
		s.tickAll()
	case "run":
		limit := time.Duration(-1)
		if len(f) > 1 {
			d, err := time.ParseDuration(strings.TrimPrefix(f[1], "for="))
			if err != nil {
				return err
			}
			limit = s.now + d
		}
		for round := 0; ; round++ {
			s.deliver()
			if !s.looking() {
				break
			}
			if round == 100 {
				fmt.Fprintln(&s.out, "still LOOKING after 100 rounds")
				break
			}
			d, ok := s.deadline()
			if !ok {
				fmt.Fprintln(&s.out, "LOOKING with no deadline")
				break
			}
			if limit >= 0 && d > limit {
				break
			}
			if d > s.now {
				s.now = d
				fmt.Fprintf(&s.out, "now %v\n", s.now)
			}
			s.tickAll()
		}
	case "crash":
		id, err := s.node(f[1])
		if err != nil {
			return err
		}
		s.up[id] = false
		s.nodes[id] = New(Config{ID: id, Voters: s.voters, QuorumConfig: "version=0"})
		fmt.Fprintf(&s.out, "%d is down\n", id)
	case "epoch":
		id, err := s.node(f[1])
		if err != nil {
			return err
		}
		e, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return err
		}
		s.nodes[id].SetPeerEpoch(e)
	case "state":
		for _, id := range s.ids() {
			e := s.nodes[id]
			if !s.up[id] {
				fmt.Fprintf(&s.out, "%d: down\n", id)
				continue
			}
			v := e.Current()
			fmt.Fprintf(&s.out, "%d: %s leader=%d zxid=%#x round=%d peerEpoch=%d\n",
				id, e.State(), v.Leader, v.Zxid, v.ElectionEpoch, v.PeerEpoch)
		}
	default:
		return fmt.Errorf("unknown command %q", f[0])
	}
	return nil
}

func TestScenarios(t *testing.T) {
	script.Run(t, "testdata/*.txt", *rewrite, func() func(string) (string, error) {
		s := &sim{}
		return func(cmd string) (string, error) {
			s.out.Reset()
			err := s.run(cmd)
			return s.out.String(), err
		}
	})
}
