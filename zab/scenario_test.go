package zab

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"zkd/wire"
	"zkd/zab/internal/script"
)

// Scenario files (testdata/*.txt) script a follower's or observer's side
// of sync and broadcast, a leader's proposals, and the leader's sync
// decision: each block is a command, a line of dashes, and the output the
// command must produce. `go test ./zab -run TestScenarios -rewrite`
// writes the outputs the code produces back into the files (then read the
// diff).
//
// Commands (zxids in hex or decimal; E:C is epoch E, counter C):
//
//	follower epoch=E last=Z    a follower after discovery (LEADERINFO's epoch, its last zxid)
//	observer epoch=E last=Z    the same, for an observer
//	recv TYPE Z                a packet from the leader (DIFF, PROPOSAL, ...): the actions, "-" for none, or the error
//	proposals voters=1,2,3 committed=Z
//	                           a leader's broadcast after the last commit Z
//	propose Z                  a new proposal: nothing, or the error
//	ack SID Z                  an ACK: the commits it makes, one a line ("commit Z syncs=[...]")
//	sync SID                   a learner's SYNC: "now" or "waits"
//	forget SID                 the learner connected again
//	plan peer=Z processed=Z [committed=SPANS] [disk=SPANS size=N snapshot=N factor=F] [force]
//	                           PlanSync for a learner at peer: "MODE Z send N [first..last]";
//	                           SPANS are E:A-B,E:A-B (epoch E, counters A to B)

var rewrite = flag.Bool("rewrite", false, "write the scenarios' actual outputs into testdata")

func TestScenarios(t *testing.T) {
	script.Run(t, "testdata/*.txt", *rewrite, func() func(string) (string, error) {
		s := &scenario{}
		return s.run
	})
}

type scenario struct {
	f     *Follower
	props *Proposals
}

var packetTypes = map[string]int32{}

func init() {
	for typ := int32(1); typ <= 20; typ++ {
		if name := wire.PacketName(typ); name != "" && !strings.Contains(name, "(") {
			packetTypes[name] = typ
		}
	}
}

// zxid reads a zxid: E:C, hex (0x...) or decimal; -1 too.
func zxid(s string) (int64, error) {
	if e, c, ok := strings.Cut(s, ":"); ok {
		ep, err1 := strconv.ParseInt(e, 10, 64)
		ct, err2 := strconv.ParseInt(c, 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return 0, err
		}
		return ep<<32 | ct, nil
	}
	return strconv.ParseInt(s, 0, 64)
}

// spans reads E:A-B,E:A-B.
func spans(s string) ([]int64, error) {
	var out []int64
	for _, part := range strings.Split(s, ",") {
		e, r, ok := strings.Cut(part, ":")
		a, b, ok2 := strings.Cut(r, "-")
		if !ok || !ok2 {
			return nil, fmt.Errorf("span %q is not E:A-B", part)
		}
		ep, err1 := strconv.ParseInt(e, 10, 64)
		from, err2 := strconv.ParseInt(a, 10, 64)
		to, err3 := strconv.ParseInt(b, 10, 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, err
		}
		out = append(out, span(ep, from, to)...)
	}
	return out, nil
}

// args reads key=value words, and bare words as key "".
func args(words []string) map[string]string {
	m := map[string]string{}
	for _, w := range words {
		k, v, _ := strings.Cut(w, "=")
		m[k] = v
	}
	return m
}

func (s *scenario) run(cmd string) (string, error) {
	f := strings.Fields(cmd)
	a := args(f[1:])
	num := func(key string) (int64, error) {
		v, ok := a[key]
		if !ok {
			return 0, fmt.Errorf("%s= missing", key)
		}
		return zxid(v)
	}
	switch f[0] {
	case "follower", "observer":
		epoch, err1 := num("epoch")
		last, err2 := num("last")
		if err := errors.Join(err1, err2); err != nil {
			return "", err
		}
		if f[0] == "observer" {
			s.f = NewObserver(epoch, last)
		} else {
			s.f = NewFollower(epoch, last)
		}
		return "", nil
	case "recv":
		if len(f) != 3 || s.f == nil {
			return "", fmt.Errorf("recv TYPE ZXID, after follower or observer")
		}
		typ, ok := packetTypes[f[1]]
		z, err := zxid(f[2])
		if !ok || err != nil {
			return "", fmt.Errorf("recv %s %s: unknown packet or zxid", f[1], f[2])
		}
		acts, err := s.f.Step(&wire.QuorumPacket{Type: typ, Zxid: z, Data: []byte{byte(z)}})
		if err != nil {
			return "error: " + err.Error() + "\n", nil
		}
		var parts []string
		for _, act := range acts {
			parts = append(parts, act.String())
		}
		if len(parts) == 0 {
			return "-\n", nil
		}
		return strings.Join(parts, ", ") + "\n", nil
	case "proposals":
		var voters []int64
		for _, v := range strings.Split(a["voters"], ",") {
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return "", fmt.Errorf("voters: %v", err)
			}
			voters = append(voters, id)
		}
		c, err := num("committed")
		if err != nil {
			return "", err
		}
		s.props = NewProposals(voters, c)
		return "", nil
	case "propose", "ack", "sync", "forget":
		if s.props == nil {
			return "", fmt.Errorf("%s before proposals", f[0])
		}
		var n []int64
		for _, w := range f[1:] {
			z, err := zxid(w)
			if err != nil {
				return "", err
			}
			n = append(n, z)
		}
		want := map[string]int{"propose": 1, "ack": 2, "sync": 1, "forget": 1}[f[0]]
		if len(n) != want {
			return "", fmt.Errorf("%s takes %d numbers", f[0], want)
		}
		switch f[0] {
		case "propose":
			if err := s.props.Propose(n[0]); err != nil {
				return "error: " + err.Error() + "\n", nil
			}
			return "", nil
		case "ack":
			var b strings.Builder
			for _, c := range s.props.Ack(n[0], n[1]) {
				fmt.Fprintf(&b, "commit %#x syncs=%v\n", c.Zxid, c.Syncs)
			}
			return b.String(), nil
		case "sync":
			if s.props.Sync(n[0]) {
				return "now\n", nil
			}
			return "waits\n", nil
		}
		s.props.Forget(n[0])
		return "", nil
	case "plan":
		return plan(a)
	}
	return "", fmt.Errorf("unknown command %q", f[0])
}

// plan runs PlanSync on the history the arguments describe.
func plan(a map[string]string) (string, error) {
	peer, err1 := zxid(a["peer"])
	processed, err2 := zxid(a["processed"])
	if err := errors.Join(err1, err2); err != nil {
		return "", err
	}
	h := History{LastProcessed: processed, ForceSnap: a["force"] == "" && hasKey(a, "force")}
	if v, ok := a["committed"]; ok {
		c, err := spans(v)
		if err != nil {
			return "", err
		}
		h.Committed = c
	}
	if v, ok := a["disk"]; ok {
		zs, err := spans(v)
		if err != nil {
			return "", err
		}
		size, err1 := strconv.ParseInt(a["size"], 10, 64)
		snap, err2 := strconv.ParseInt(a["snapshot"], 10, 64)
		factor, err3 := strconv.ParseFloat(a["factor"], 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return "", fmt.Errorf("disk= wants size=, snapshot= and factor=: %v", err)
		}
		h.TxnLog, h.SnapshotBytes, h.SnapshotSizeFactor = disk(zs, size), snap, factor
	}
	p := PlanSync(peer, h)
	out := fmt.Sprintf("%s %#x send %d", p.Mode, p.Zxid, len(p.Send))
	if len(p.Send) > 0 {
		out += fmt.Sprintf(" %#x..%#x", p.Send[0], p.Send[len(p.Send)-1])
		if !slices.IsSorted(p.Send) {
			out += " (out of order)"
		}
	}
	return out + "\n", nil
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

// span is the zxids from..to of one epoch.
func span(epoch, from, to int64) []int64 {
	var out []int64
	for c := from; c <= to; c++ {
		out = append(out, epoch<<32|c)
	}
	return out
}

// disk is a txn log holding zxids, each txn of size bytes.
func disk(zxids []int64, size int64) func(from, limit int64) []int64 {
	return func(from, limit int64) []int64 {
		i, _ := slices.BinarySearch(zxids, from)
		if i == len(zxids) || (zxids[i] != from && i == 0) {
			return nil // the log does not reach back to from
		}
		if zxids[i] != from {
			i--
		}
		rest := zxids[i:]
		if limit >= 0 && int64(len(rest))*size > limit {
			return nil
		}
		return rest
	}
}
