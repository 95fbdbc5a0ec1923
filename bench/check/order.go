package check

import (
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"zkd/internal/zkclient"
	"zkd/wire"
)

// The fifo and watch workloads check the order a session sees: its
// requests answered and applied in the order it sent them, and each watch
// event before any reply that shows the change it announces.

// fifoBatch is how many requests a fifo client has in flight at once.
const fifoBatch = 8

func fifoPath(client int) string { return fmt.Sprintf("%s/c%d", fifoRoot, client) }

// fifoClient pipelines batches of setData and getData on a znode of its
// own, which no other client writes: each setData writes the next of the
// client's numbers.
func fifoClient(cl *client, rng *rand.Rand, h *history, stop <-chan struct{}) {
	path := fifoPath(cl.id)
	index, next, made := 0, 1, false
	type inFlight struct {
		op  Op
		p   *zkclient.Pending
		get *wire.GetDataResponse
		set *wire.StatResponse
	}
	for {
		c, ok := cl.next(stop)
		if !ok {
			return
		}
		if c == nil {
			continue
		}
		var err error
		if !made {
			if _, err := c.Create(path, []byte("0"), openACL, wire.ModePersistent, 0); err != nil && !errors.Is(err, wire.ErrNodeExists) {
				backOff(err)
				continue
			}
			made = true
		}
		var batch []inFlight
		for i := 0; i < fifoBatch; i++ {
			f := inFlight{op: Op{Client: cl.id, Session: cl.sessions, Index: index, Call: time.Now()}}
			index++
			if rng.Intn(2) == 0 {
				f.op.Kind, f.op.Value = "fifo-write", next
				next++
				f.set = &wire.StatResponse{}
				f.p, err = c.Send(wire.OpSetData, &wire.SetDataRequest{Path: path, Data: []byte(strconv.Itoa(f.op.Value)), Version: -1}, f.set)
			} else {
				f.op.Kind = "fifo-read"
				f.get = &wire.GetDataResponse{}
				f.p, err = c.Send(wire.OpGetData, &wire.PathWatchRequest{Path: path}, f.get)
			}
			if err != nil {
				f.op.Return, f.op.Outcome, f.op.Err = time.Now(), outcomeOf(err), err.Error()
				h.add(f.op)
				break
			}
			batch = append(batch, f)
		}
		for _, f := range batch {
			_, err = f.p.Wait()
			f.op.Return, f.op.Seq, f.op.Outcome = time.Now(), f.p.Seq(), outcomeOf(err)
			switch {
			case err != nil:
				f.op.Err = err.Error()
			case f.set != nil:
				f.op.Version = f.set.Stat.Version
			default:
				f.op.Version = f.get.Stat.Version
				if f.op.Value, err = strconv.Atoi(string(f.get.Data)); err != nil {
					f.op.Outcome, f.op.Err = Failed, fmt.Sprintf("%s holds %q", path, f.get.Data)
				}
			}
			h.add(f.op)
		}
		backOff(err)
	}
}

// checkFIFO checks each fifo client's history: the replies of a session
// came in the order of its requests; the writes the server acknowledged
// were applied in the order they were sent (their versions rise); and
// each read returned the value of the last write sent before it that was
// acknowledged, or of a later one sent before it that got no answer (it
// may have been applied), and never that of a write sent after it or
// refused.
func checkFIFO(ops []Op) Verdict {
	byClient := map[int][]Op{}
	for _, op := range ops {
		if strings.HasPrefix(op.Kind, "fifo-") {
			byClient[op.Client] = append(byClient[op.Client], op)
		}
	}
	var bad []string
	writes, reads := 0, 0
	for client, cops := range byClient {
		sort.Slice(cops, func(i, j int) bool { return cops[i].Index < cops[j].Index })
		lastSeq := map[int]uint64{} // by session
		lastVersion := int32(-1)    // of the last acknowledged write
		lastOK := 0                 // its value; 0, the first value, before any
		maybe := map[int]bool{}     // values of unanswered writes sent since
		written := map[int]Op{}     // every write, by value
		for _, op := range cops {
			if op.Kind == "fifo-write" {
				written[op.Value] = op
			}
		}
		for _, op := range cops {
			if op.Seq > 0 {
				if op.Seq <= lastSeq[op.Session] {
					bad = append(bad, fmt.Sprintf("client %d: request %d answered as reply %d of its session, after reply %d", client, op.Index, op.Seq, lastSeq[op.Session]))
				}
				lastSeq[op.Session] = op.Seq
			}
			switch op.Kind {
			case "fifo-write":
				switch op.Outcome {
				case OK:
					writes++
					if op.Version <= lastVersion {
						bad = append(bad, fmt.Sprintf("client %d: write %d made version %d, not after version %d of an earlier acknowledged write", client, op.Value, op.Version, lastVersion))
					}
					lastVersion, lastOK = op.Version, op.Value
					maybe = map[int]bool{}
				case Unknown:
					maybe[op.Value] = true
				}
			case "fifo-read":
				if op.Outcome != OK {
					continue
				}
				reads++
				if op.Value == lastOK || maybe[op.Value] {
					continue
				}
				w, ok := written[op.Value]
				what := "an earlier write's, overwritten by an acknowledged one sent before the read"
				switch {
				case !ok && op.Value != 0:
					what = "a value no write wrote"
				case ok && w.Index > op.Index:
					what = "a write's sent after the read"
				case ok && w.Outcome == Failed:
					what = "a refused write's"
				}
				bad = append(bad, fmt.Sprintf("client %d: read %d returned %d, %s; want %d (the last acknowledged write sent before it) or an unanswered one since", client, op.Index, op.Value, what, lastOK))
			}
		}
	}
	v := Verdict{Workload: "fifo", Valid: len(bad) == 0 && writes > 0 && reads > 0}
	v.Summary = fmt.Sprintf("%d clients, %d acknowledged writes and %d reads in pipelined batches of %d; %d out of order", len(byClient), writes, reads, fifoBatch, len(bad))
	if len(bad) > 0 {
		v.Summary += ": " + strings.Join(first(bad, 5), "; ")
	}
	return v
}

func watchPath(k int) string { return fmt.Sprintf("%s/w%d", watchRoot, k) }

// watchClient writes a few shared znodes and watches them: a getData or
// an exists with a watch when it has none on the znode (an exists that
// finds its znode sets a data watch too), a plain getData when it has
// one, a setData of a value of its own now and then. It records each
// reply with the znode's version and each data event with the replies
// that came before it.
func watchClient(cl *client, keys int, rng *rand.Rand, h *history, stop <-chan struct{}) {
	w := followOneShot(cl, h, "watch", wire.EventNodeDataChanged, watchRoot+"/w")
	made := sharedZnodes{}
	n := 0
	loop(cl, h, stop, func(c *zkclient.Conn, op *Op) error {
		k := rng.Intn(keys)
		if err := made.ensure(c, watchPath(k), []byte("0")); err != nil {
			return err
		}
		op.Key, op.Session = k, cl.sessions
		has := w.has(cl.sessions, k)
		var p *zkclient.Pending
		var err error
		var get wire.GetDataResponse
		var st wire.StatResponse
		switch {
		case rng.Intn(3) == 0:
			n++
			op.Kind, op.Value = "watch-write", cl.id*1_000_000+n
			p, err = c.Send(wire.OpSetData, &wire.SetDataRequest{Path: watchPath(k), Data: []byte(strconv.Itoa(op.Value)), Version: -1}, &st)
		case !has && rng.Intn(2) == 0:
			op.Kind, op.Elem = "watch-set", "exists"
			p, err = c.Send(wire.OpExists, &wire.PathWatchRequest{Path: watchPath(k), Watch: true}, &st)
		case !has:
			op.Kind = "watch-set"
			p, err = c.Send(wire.OpGetData, &wire.PathWatchRequest{Path: watchPath(k), Watch: true}, &get)
		default:
			op.Kind = "watch-read"
			p, err = c.Send(wire.OpGetData, &wire.PathWatchRequest{Path: watchPath(k)}, &get)
		}
		if err == nil {
			_, err = p.Wait()
			op.Seq = p.Seq()
		}
		op.Outcome = outcomeOf(err)
		if err == nil {
			op.Version = get.Stat.Version
			if op.Kind == "watch-write" || op.Elem == "exists" {
				op.Version = st.Stat.Version
			}
			if op.Kind == "watch-set" {
				w.set(cl.sessions, k, op.Seq)
			}
		}
		return err
	})
}

// oneShotWatches is what a one-shot watch client knows of its watches:
// for each session and key, the reply of the last watch set and the
// replies before the last event.
type oneShotWatches struct {
	mu        sync.Mutex
	setAt     map[[2]int]uint64
	lastEvent map[[2]int]uint64
}

// followOneShot records cl's events of type typ on the znodes named
// prefix+key as operations of kind workload+"-event".
func followOneShot(cl *client, h *history, workload string, typ wire.EventType, prefix string) *oneShotWatches {
	w := &oneShotWatches{setAt: map[[2]int]uint64{}, lastEvent: map[[2]int]uint64{}}
	cl.onEvent = func(session int, ev zkclient.Event) {
		if ev.Type != typ {
			return
		}
		k, err := strconv.Atoi(strings.TrimPrefix(ev.Path, prefix))
		if err != nil {
			return
		}
		now := time.Now()
		h.add(Op{Client: cl.id, Kind: workload + "-event", Key: k, Session: session, Seq: ev.After, Outcome: OK, Call: now, Return: now})
		w.mu.Lock()
		w.lastEvent[[2]int{session, k}] = ev.After
		w.mu.Unlock()
	}
	return w
}

// has says whether the session has a watch on key that has not fired.
func (w *oneShotWatches) has(session, key int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	set, ok := w.setAt[[2]int{session, key}]
	return ok && w.lastEvent[[2]int{session, key}] < set
}

// set notes a watch set on key by the session's reply seq.
func (w *oneShotWatches) set(session, key int, seq uint64) {
	w.mu.Lock()
	w.setAt[[2]int{session, key}] = seq
	w.mu.Unlock()
}

// checkWatch checks each watch client's sessions, replies and events in
// the order they reached the client: a data event only for a znode the
// session had a watch on (one-shot: one event a watch); no reply showing
// a version of a watched znode newer than the one its watch was set at
// before that watch's event (ZooKeeper's promise that a client sees the
// event before the change); so also no change missed by a watch that
// a later read would show.
func checkWatch(ops []Op) Verdict { return checkOneShot(ops, "watch", "w", "data") }

// checkOneShot is checkWatch for the workload whose operations' kinds
// begin with workload+"-"; its znodes are named letter+key, its events
// of one kind (what).
func checkOneShot(ops []Op, workload, letter, what string) Verdict {
	prefix := workload + "-"
	type sessionKey struct{ client, session int }
	bySession := map[sessionKey][]Op{}
	for _, op := range ops {
		if strings.HasPrefix(op.Kind, prefix) && op.Outcome == OK && op.Seq > 0 {
			s := sessionKey{op.Client, op.Session}
			bySession[s] = append(bySession[s], op)
		}
	}
	var bad []string
	events, watches := 0, 0
	for s, sops := range bySession {
		// An event with After a came after reply a and before reply a+1.
		at := func(op Op) float64 {
			if op.Kind == prefix+"event" {
				return float64(op.Seq) + 0.5
			}
			return float64(op.Seq)
		}
		sort.SliceStable(sops, func(i, j int) bool { return at(sops[i]) < at(sops[j]) })
		watched := map[int]int32{} // key: the version its watch was set at
		for _, op := range sops {
			v, has := watched[op.Key]
			switch op.Kind {
			case prefix + "event":
				events++
				if !has {
					bad = append(bad, fmt.Sprintf("client %d session %d: an event for %s%d after reply %d, with no watch set", s.client, s.session, letter, op.Key, op.Seq))
				}
				delete(watched, op.Key)
				continue
			}
			if has && op.Version > v {
				bad = append(bad, fmt.Sprintf("client %d session %d: reply %d (%s) shows version %d of %s%d before the event of the watch set at version %d",
					s.client, s.session, op.Seq, op.Kind, op.Version, letter, op.Key, v))
				delete(watched, op.Key) // one report a watch
			}
			if op.Kind == prefix+"set" {
				watches++
				if _, again := watched[op.Key]; !again {
					watched[op.Key] = op.Version
				}
			}
		}
	}
	v := Verdict{Workload: workload, Valid: len(bad) == 0 && events > 0}
	v.Summary = fmt.Sprintf("%d sessions, %d watches set, %d %s events; %d wrong", len(bySession), watches, events, what, len(bad))
	if len(bad) > 0 {
		v.Summary += ": " + strings.Join(first(bad, 5), "; ")
	}
	return v
}

func pwatchPath(k int) string { return fmt.Sprintf("%s/p%d", pwatchRoot, k) }

// pwatchClient sets a persistent recursive watch on the pwatch root once
// in each session (the client sets it again on each server it moves to,
// with setWatches2) and then writes and reads a few shared znodes below
// it: a setData of a value of its own now and then, a getData otherwise.
// It records each reply with the znode's version and the connection it
// came on, and each data event with the replies before it and its
// connection.
func pwatchClient(cl *client, keys int, rng *rand.Rand, h *history, stop <-chan struct{}) {
	cl.onEvent = func(session int, ev zkclient.Event) {
		if ev.Type != wire.EventNodeDataChanged {
			return
		}
		k, err := strconv.Atoi(strings.TrimPrefix(ev.Path, pwatchRoot+"/p"))
		if err != nil {
			return
		}
		now := time.Now()
		h.add(Op{Client: cl.id, Kind: "pwatch-event", Key: k, Session: session, Seq: ev.After, Conn: ev.Conn,
			Outcome: OK, Call: now, Return: now})
	}
	made := sharedZnodes{}
	watching := 0 // the session whose watch is set
	n := 0
	loop(cl, h, stop, func(c *zkclient.Conn, op *Op) error {
		op.Session = cl.sessions
		var p *zkclient.Pending
		var err error
		var added wire.ErrorResponse
		var get wire.GetDataResponse
		var st wire.StatResponse
		k := rng.Intn(keys)
		switch {
		case watching != cl.sessions:
			op.Kind = "pwatch-add"
			p, err = c.Send(wire.OpAddWatch, &wire.AddWatchRequest{Path: pwatchRoot, Mode: wire.AddWatchPersistentRecursive}, &added)
		case !made[pwatchPath(k)]:
			// Before its first use here (its creation is no data
			// event, and has no version to count).
			return made.ensure(c, pwatchPath(k), []byte("0"))
		case rng.Intn(3) == 0:
			n++
			op.Kind, op.Key, op.Value = "pwatch-write", k, cl.id*1_000_000+n
			p, err = c.Send(wire.OpSetData, &wire.SetDataRequest{Path: pwatchPath(k), Data: []byte(strconv.Itoa(op.Value)), Version: -1}, &st)
		default:
			op.Kind, op.Key = "pwatch-read", k
			p, err = c.Send(wire.OpGetData, &wire.PathWatchRequest{Path: pwatchPath(k)}, &get)
		}
		if err == nil {
			op.Conn = p.Conn()
			_, err = p.Wait()
			op.Seq = p.Seq()
		}
		if err == nil && op.Kind == "pwatch-add" && added.Err != wire.ErrOK {
			err = added.Err
		}
		op.Outcome = outcomeOf(err)
		if err == nil {
			switch op.Kind {
			case "pwatch-add":
				watching = cl.sessions
			case "pwatch-write":
				op.Version = st.Stat.Version
			default:
				op.Version = get.Stat.Version
			}
		}
		return err
	})
}

// checkPWatch checks each pwatch client's connections, replies and events
// in the order they reached the client. A persistent recursive watch
// fires for every change below its path, and ZooKeeper sends each event
// before any reply computed from the change it announces. So while one
// connection lasts, with the watch set (by the session's addWatch on it,
// or by the setWatches2 that opened it), two replies showing versions U
// and V of a znode have exactly V-U data events of that znode between
// them: fewer is an event missed or late, more an event twice or early.
// An event may not come on a connection without the watch, nor before
// the reply of the addWatch that set it. (Across connections events may
// be lost: a server does not send again what the client's last one did.)
func checkPWatch(ops []Op) Verdict {
	type sessionKey struct{ client, session int }
	type spanKey struct {
		sessionKey
		conn uint64
	}
	set := map[sessionKey]Op{}   // the session's addWatch that was answered
	tried := map[spanKey]bool{}  // an addWatch sent on the connection
	bySpan := map[spanKey][]Op{} // its replies and events
	for _, op := range ops {
		if !strings.HasPrefix(op.Kind, "pwatch-") || op.Conn == 0 {
			continue
		}
		s := sessionKey{op.Client, op.Session}
		sp := spanKey{s, op.Conn}
		if op.Kind == "pwatch-add" {
			tried[sp] = true
			if prev, ok := set[s]; op.Outcome == OK && (!ok || op.Seq < prev.Seq) {
				set[s] = op
			}
			if op.Outcome != OK {
				continue
			}
		}
		if op.Outcome == OK && (op.Seq > 0 || op.Kind == "pwatch-event") {
			bySpan[sp] = append(bySpan[sp], op)
		}
	}
	var bad []string
	events, pairs := 0, 0
	for sp, sops := range bySpan {
		at := func(op Op) float64 {
			if op.Kind == "pwatch-event" {
				return float64(op.Seq) + 0.5
			}
			return float64(op.Seq)
		}
		sort.SliceStable(sops, func(i, j int) bool { return at(sops[i]) < at(sops[j]) })
		name := fmt.Sprintf("client %d session %d connection %d", sp.client, sp.session, sp.conn)
		add, ok := set[sp.sessionKey]
		// From where on this connection the watch is set: its start when
		// an earlier connection's addWatch was answered; the reply of
		// the addWatch answered on it; never otherwise.
		active := ok && add.Conn < sp.conn
		type seen struct {
			version int32
			events  int
			seq     uint64
		}
		last := map[int]*seen{}
		for _, op := range sops {
			switch op.Kind {
			case "pwatch-add":
				active = true
				continue
			case "pwatch-event":
				events++
				if !active {
					if !tried[sp] || (ok && add.Conn == sp.conn) {
						bad = append(bad, fmt.Sprintf("%s: an event for p%d after reply %d, with no watch set", name, op.Key, op.Seq))
					}
					continue
				}
				if l := last[op.Key]; l != nil {
					l.events++
				}
				continue
			}
			if !active {
				continue
			}
			if l := last[op.Key]; l != nil {
				pairs++
				if want := int(op.Version - l.version); l.events != want {
					bad = append(bad, fmt.Sprintf("%s: replies %d and %d show p%d at versions %d and %d, with %d data events between them (want %d)",
						name, l.seq, op.Seq, op.Key, l.version, op.Version, l.events, want))
				}
			}
			last[op.Key] = &seen{version: op.Version, seq: op.Seq}
		}
	}
	v := Verdict{Workload: "pwatch", Valid: len(bad) == 0 && events > 0 && pairs > 0}
	v.Summary = fmt.Sprintf("%d connections, %d data events, %d pairs of replies checked; %d wrong", len(bySpan), events, pairs, len(bad))
	if len(bad) > 0 {
		v.Summary += ": " + strings.Join(first(bad, 5), "; ")
	}
	return v
}

func cwatchPath(k int) string { return fmt.Sprintf("%s/c%d", cwatchRoot, k) }

// cwatchClient is watchClient for children, as service discovery and
// Curator's PathChildrenCache watch them: a getChildren2 with a watch on
// a shared znode when it has none there, a plain one when it has one, and
// now and then a child of its own created or deleted (at most four each).
// It records each read with the znode's child version (cversion) and each
// children event with the replies that came before it.
func cwatchClient(cl *client, keys int, rng *rand.Rand, h *history, stop <-chan struct{}) {
	w := followOneShot(cl, h, "cwatch", wire.EventNodeChildrenChanged, cwatchRoot+"/c")
	made := sharedZnodes{}
	mine := map[int][]string{} // by key: the children made and not yet deleted
	n := 0
	loop(cl, h, stop, func(c *zkclient.Conn, op *Op) error {
		k := rng.Intn(keys)
		if err := made.ensure(c, cwatchPath(k), nil); err != nil {
			return err
		}
		op.Key, op.Session = k, cl.sessions
		has := w.has(cl.sessions, k)
		var p *zkclient.Pending
		var err error
		var kids wire.GetChildren2Response
		var created wire.CreateResponse
		child := ""
		switch {
		case rng.Intn(25) == 0:
			// An ephemeral child of a session of its own, which closes
			// at once: the close deletes it, as a service instance
			// leaving a discovery registry does.
			n++
			op.Kind, op.Elem = "cwatch-ephemeral", fmt.Sprintf("%s/e-%d-%d", cwatchPath(k), cl.id, n)
			side, err := zkclient.Dial(cl.addrs, cl.timeout, nil)
			if err == nil {
				_, err = side.Create(op.Elem, nil, openACL, wire.ModeEphemeral, 0)
				if cerr := side.Close(); err == nil {
					err = cerr
				}
			}
			op.Outcome = outcomeOf(err)
			return err
		case rng.Intn(3) == 0 && (len(mine[k]) >= 4 || (len(mine[k]) > 0 && rng.Intn(2) == 0)):
			child = mine[k][0]
			op.Kind, op.Elem = "cwatch-delete", child
			p, err = c.Send(wire.OpDelete, &wire.DeleteRequest{Path: child, Version: -1}, nil)
		case rng.Intn(3) == 0:
			n++
			op.Kind = "cwatch-create"
			p, err = c.Send(wire.OpCreate, &wire.CreateRequest{Path: fmt.Sprintf("%s/n-%d-%d", cwatchPath(k), cl.id, n), Data: nil,
				ACL: openACL, Flags: wire.ModePersistent}, &created)
		case !has:
			op.Kind = "cwatch-set"
			p, err = c.Send(wire.OpGetChildren2, &wire.PathWatchRequest{Path: cwatchPath(k), Watch: true}, &kids)
		default:
			op.Kind = "cwatch-read"
			p, err = c.Send(wire.OpGetChildren2, &wire.PathWatchRequest{Path: cwatchPath(k)}, &kids)
		}
		if err == nil {
			_, err = p.Wait()
			op.Seq = p.Seq()
		}
		op.Outcome = outcomeOf(err)
		switch {
		case op.Kind == "cwatch-create" && err == nil:
			op.Elem = created.Path
			mine[k] = append(mine[k], created.Path)
		case op.Kind == "cwatch-delete" && (err == nil || errors.Is(err, wire.ErrNoNode)):
			// Gone, by this delete or by an earlier one without an answer.
			mine[k] = mine[k][1:]
		case err == nil:
			op.Version = kids.Stat.Cversion
			if op.Kind == "cwatch-set" {
				w.set(cl.sessions, k, op.Seq)
			}
		}
		return err
	})
}

// checkCWatch is checkWatch for the cwatch workload: children events, and
// the child versions the reads showed.
func checkCWatch(ops []Op) Verdict { return checkOneShot(ops, "cwatch", "c", "children") }
