package check

import (
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"zkd/internal/zkclient"
	"zkd/wire"
)

// Outcome is how an operation ended.
type Outcome int

const (
	OK      Outcome = iota // the server answered that it happened
	Failed                 // the server answered that it did not
	Unknown                // no answer: it may have happened or not
)

func (o Outcome) String() string { return [...]string{"ok", "failed", "unknown"}[o] }

// Op is one operation of the history.
type Op struct {
	Client int
	Kind   string // read, write, cas; add; final-read
	Key    int    // the register
	Value  int    // written, or read
	From   int    // cas: the value expected
	Elem   string // set: the element added
	// fifo and watch: the client's session (1 for its first), the
	// request's place in the client's order of sending, the reply's
	// place among its session's replies, and the znode's version the
	// reply gave.
	Session int    `json:",omitempty"`
	Index   int    `json:",omitempty"`
	Seq     uint64 `json:",omitempty"`
	Version int32  `json:",omitempty"`
	// pwatch: the number of the session's connection the reply or the
	// event came on (1 for its first).
	Conn    uint64 `json:",omitempty"`
	Outcome Outcome
	Call    time.Time
	Return  time.Time
	Err     string
}

// history collects every client's operations.
type history struct {
	mu  sync.Mutex
	ops []Op
}

func (h *history) add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// outcomeOf sorts an error: no error is OK, an answer from the server
// that refuses is Failed, and a request that lost its connection or
// session before its answer is Unknown.
func outcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return OK
	case errors.Is(err, zkclient.ErrNotConnected):
		return Failed // never sent
	case errors.Is(err, wire.ErrConnectionLoss), errors.Is(err, wire.ErrSessionExpired),
		errors.Is(err, wire.ErrOperationTimeout), errors.Is(err, wire.ErrSessionMoved):
		return Unknown
	}
	var code wire.ErrCode
	if errors.As(err, &code) {
		return Failed
	}
	return Unknown
}

var openACL = []wire.ACL{{Perms: wire.PermAll, ID: wire.Id{Scheme: "world", ID: "anyone"}}}

const (
	registerRoot = "/check-register"
	setRoot      = "/check-set"
	idsRoot      = "/check-ids"
	ephRoot      = "/check-eph"
	queueRoot    = "/check-queue"
	counterPath  = "/check-counter"
	fifoRoot     = "/check-fifo"
	watchRoot    = "/check-watch"
	pwatchRoot   = "/check-pwatch"
	cwatchRoot   = "/check-cwatch"
	bulkRoot     = "/check-bulk"
)

func registerPath(k int) string { return fmt.Sprintf("%s/r%d", registerRoot, k) }

// keyGeneration is how long clients use one set of registers before they
// move to fresh ones: a register's history stays short enough for the
// linearizability check however long the run (Jepsen's independent keys).
const keyGeneration = 5 * time.Second

// registersPerGeneration numbers registers: key g*registersPerGeneration+k
// is register k of generation g.
const registersPerGeneration = 1000

// client is one workload client: a session with one member, opened again
// when it expires.
type client struct {
	id      int
	addrs   []string // its member, then the others it may move to
	timeout time.Duration
	pause   time.Duration // between two operations
	conn    *zkclient.Conn
	cur     atomic.Pointer[zkclient.Conn] // conn, for hop
	// onEvent, when set, gets the events of each session, with the
	// session's number (1 for the client's first).
	onEvent  func(session int, ev zkclient.Event)
	sessions int // opened so far
}

func (cl *client) session() (*zkclient.Conn, error) {
	if cl.conn != nil && cl.conn.State() != wire.StateExpired && cl.conn.State() != zkclient.StateClosed {
		return cl.conn, nil
	}
	if cl.conn != nil {
		cl.conn.Close()
	}
	var handler func(zkclient.Event)
	if cl.onEvent != nil {
		n, on := cl.sessions+1, cl.onEvent
		handler = func(ev zkclient.Event) { on(n, ev) }
	}
	c, err := zkclient.Dial(cl.addrs, cl.timeout, handler)
	if err != nil {
		cl.conn = nil
		cl.cur.Store(nil)
		return nil, err
	}
	cl.conn = c
	cl.cur.Store(c)
	cl.sessions++
	return c, nil
}

// next waits the client's pause and returns its session: nil (after a
// wait) when it has none and cannot open one, false once stop is closed.
func (cl *client) next(stop <-chan struct{}) (*zkclient.Conn, bool) {
	if cl.pause > 0 {
		time.Sleep(cl.pause)
	}
	select {
	case <-stop:
		return nil, false
	default:
	}
	c, err := cl.session()
	if err != nil {
		time.Sleep(50 * time.Millisecond)
		return nil, true
	}
	return c, true
}

// hop drops the client's connection every so often (between a half and
// one and a half times every), whatever it has in flight, and its session
// goes on on the next member; once stop is closed it returns how many
// times.
func (cl *client) hop(every time.Duration, rng *rand.Rand, stop <-chan struct{}) int64 {
	n := int64(0)
	for {
		select {
		case <-stop:
			return n
		case <-time.After(every/2 + time.Duration(rng.Int63n(int64(every)))):
		}
		if c := cl.cur.Load(); c != nil && c.State() == wire.StateSyncConnected {
			c.Hop()
			n++
		}
	}
}

func (cl *client) close() {
	if cl.conn != nil {
		cl.conn.Close()
	}
}

// freshRoots fails when a workload's znode is on the ensemble already: an
// earlier run's elements would count as this run's.
func freshRoots(addrs []string, timeout time.Duration) error {
	c, err := zkclient.Dial(addrs, timeout, nil)
	if err != nil {
		return fmt.Errorf("check: connecting to %v: %w", addrs, err)
	}
	defer c.Close()
	for _, p := range []string{registerRoot, setRoot, idsRoot, ephRoot, queueRoot, fifoRoot, watchRoot, pwatchRoot, cwatchRoot, bulkRoot, counterPath} {
		if _, ok, err := c.Exists(p, false); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("check: %s is on the ensemble already, from an earlier run; remove the check's znodes first (zkCli.sh: deleteall %s)", p, p)
		}
	}
	return nil
}

// setup creates the znodes the workloads use, through any member.
func setup(addrs []string, timeout time.Duration) error {
	c, err := zkclient.Dial(addrs, timeout, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, p := range []string{registerRoot, setRoot, idsRoot, ephRoot, queueRoot, fifoRoot, watchRoot, pwatchRoot, cwatchRoot, bulkRoot} {
		if _, err := c.Create(p, nil, openACL, wire.ModePersistent, 0); err != nil && !errors.Is(err, wire.ErrNodeExists) {
			return err
		}
	}
	if _, err := c.Create(counterPath, []byte("0"), openACL, wire.ModePersistent, 0); err != nil && !errors.Is(err, wire.ErrNodeExists) {
		return err
	}
	return nil
}

// readValue reads a register: its data, then a check of the version read
// (a multi, so a write through the leader and its quorum). The value was
// the register's when the check committed, so the read is linearizable;
// a check that fails (the register moved meanwhile) makes the read say
// nothing, and it is left out. A sync and a getData would not do: a
// leader paused long enough to be replaced answers syncs itself when it
// wakes, and Apache ZooKeeper's does.
func readValue(c *zkclient.Conn, k int) (int, error) {
	v, st, err := getValue(c, k)
	if err != nil {
		return 0, err
	}
	return v, c.Check(registerPath(k), st.Version)
}

// getValue is a getData of a register, which may be stale.
func getValue(c *zkclient.Conn, k int) (int, wire.Stat, error) {
	data, st, err := c.Get(registerPath(k), false)
	if err != nil {
		return 0, st, err
	}
	v, perr := strconv.Atoi(string(data))
	if perr != nil {
		return 0, st, fmt.Errorf("register %d holds %q", k, data)
	}
	return v, st, nil
}

// backOff waits a little after a request that found no connection, so
// that a client without a server does not spin.
func backOff(err error) {
	if errors.Is(err, zkclient.ErrNotConnected) || errors.Is(err, wire.ErrSessionExpired) {
		time.Sleep(20 * time.Millisecond)
	}
}

// finalChildren and finalCounter read the workloads' state after the
// faults, through a synced session.
func finalChildren(addrs []string, path string, timeout time.Duration) (map[string]bool, error) {
	return finalElements(addrs, path, timeout, nil)
}

// finalElements reads the children of path through a synced session, each
// as element(its name), or as its name when element is nil. A path that is
// gone, an acknowledged create lost, has lost every element under it too.
func finalElements(addrs []string, path string, timeout time.Duration, element func(c *zkclient.Conn, name string) (string, error)) (map[string]bool, error) {
	c, err := zkclient.Dial(addrs, timeout, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Sync(path); err != nil {
		return nil, err
	}
	kids, _, err := c.Children(path, false)
	if errors.Is(err, wire.ErrNoNode) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, k := range kids {
		if element != nil {
			if k, err = element(c, k); err != nil {
				return nil, err
			}
		}
		out[k] = true
	}
	return out, nil
}

func finalCounter(addrs []string, timeout time.Duration) (int, error) {
	c, err := zkclient.Dial(addrs, timeout, nil)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.Sync(counterPath); err != nil {
		return 0, err
	}
	data, _, err := c.Get(counterPath, false)
	if errors.Is(err, wire.ErrNoNode) {
		return -1, nil // its acknowledged create lost
	}
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(data))
}

// loop runs step on cl's session until stop and records each operation:
// step says what it did (its kind, values and outcome), loop adds the
// client, the times and the error. A step that leaves the kind empty did
// nothing worth recording.
func loop(cl *client, h *history, stop <-chan struct{}, step func(c *zkclient.Conn, op *Op) error) {
	for {
		c, ok := cl.next(stop)
		if !ok {
			return
		}
		if c == nil {
			continue
		}
		op := Op{Client: cl.id, Call: time.Now()}
		err := step(c, &op)
		if op.Kind != "" {
			op.Return = time.Now()
			if err != nil {
				op.Err = err.Error()
			}
			h.add(op)
		}
		backOff(err)
	}
}

// sharedZnodes are the znodes a client shares with the others of its
// workload (registers, watched znodes), by path: each is created by
// whichever client uses it first, and the others find it there.
type sharedZnodes map[string]bool

// ensure creates path with data unless the client has seen it made.
func (m sharedZnodes) ensure(c *zkclient.Conn, path string, data []byte) error {
	if m[path] {
		return nil
	}
	if _, err := c.Create(path, data, openACL, wire.ModePersistent, 0); err != nil && !errors.Is(err, wire.ErrNodeExists) {
		return err
	}
	m[path] = true
	return nil
}

// registerClient runs reads, writes and compare-and-sets on random
// registers of the current generation: a read as readValue; a write a
// setData; a cas a getData and a setData at the version read, not made
// when the value read is not the one expected (that cas tells nothing:
// its read may be stale).
func registerClient(cl *client, keys int, start time.Time, rng *rand.Rand, h *history, stop <-chan struct{}) {
	made := sharedZnodes{}
	loop(cl, h, stop, func(c *zkclient.Conn, op *Op) error {
		k := int(time.Since(start)/keyGeneration)*registersPerGeneration + rng.Intn(keys)
		// A generation's registers start at 0.
		if err := made.ensure(c, registerPath(k), []byte("0")); err != nil {
			return err
		}
		op.Key = k
		var err error
		switch r := rng.Intn(10); {
		case r < 4:
			op.Kind = "read"
			op.Value, err = readValue(c, k)
			op.Outcome = outcomeOf(err)
		case r < 7:
			op.Kind, op.Value = "write", 1+rng.Intn(5)
			_, err = c.Set(registerPath(k), []byte(strconv.Itoa(op.Value)), -1)
			op.Outcome = outcomeOf(err)
		default:
			op.Kind, op.From, op.Value = "cas", rng.Intn(6), 1+rng.Intn(5)
			var v int
			var st wire.Stat
			v, st, err = getValue(c, k)
			if err != nil || v != op.From {
				op.Kind, op.Outcome = "cas-not-made", Failed // nothing written
				break
			}
			_, err = c.Set(registerPath(k), []byte(strconv.Itoa(op.Value)), st.Version)
			op.Outcome = outcomeOf(err)
		}
		return err
	})
}

// setClient adds unique elements to the set (a create each).
func setClient(cl *client, h *history, stop <-chan struct{}) {
	n := 0
	loop(cl, h, stop, func(c *zkclient.Conn, op *Op) error {
		op.Kind, op.Elem = "add", fmt.Sprintf("e-%d-%d", cl.id, n)
		n++
		_, err := c.Create(setRoot+"/"+op.Elem, nil, openACL, wire.ModePersistent, 0)
		op.Outcome = outcomeOf(err)
		return err
	})
}

// bulkClient overwrites its own znode with size bytes at a time, each
// write numbered from 1 in its first bytes ("17:xxx…"), as fast as the
// ensemble takes them: enough to fill a log that waits for a stalled
// disk within seconds.
func bulkClient(cl *client, size int, h *history, stop <-chan struct{}) {
	path := fmt.Sprintf("%s/b%d", bulkRoot, cl.id)
	made, n := false, 0
	pad := make([]byte, size)
	for i := range pad {
		pad[i] = 'x'
	}
	loop(cl, h, stop, func(c *zkclient.Conn, op *Op) error {
		if !made {
			_, err := c.Create(path, []byte("0:"), openACL, wire.ModePersistent, 0)
			if err != nil && !errors.Is(err, wire.ErrNodeExists) {
				return err
			}
			made = true
		}
		n++
		data := append([]byte(strconv.Itoa(n)+":"), pad...)[:size]
		op.Kind, op.Value = "bulk", n
		_, err := c.Set(path, data, -1)
		op.Outcome = outcomeOf(err)
		return err
	})
}

// finalBulk reads, after a sync, the write each bulk znode holds, by
// client.
func finalBulk(addrs []string, timeout time.Duration) (map[int]int, error) {
	// Each znode as "client:write".
	elems, err := finalElements(addrs, bulkRoot, timeout, func(c *zkclient.Conn, name string) (string, error) {
		data, _, err := c.Get(bulkRoot+"/"+name, false)
		if err != nil {
			return "", err
		}
		num, _, ok := strings.Cut(string(data), ":")
		if _, err := strconv.Atoi(num); !ok || err != nil {
			return "", fmt.Errorf("%s/%s holds %.20q…, not a numbered write", bulkRoot, name, data)
		}
		return strings.TrimPrefix(name, "b") + ":" + num, nil
	})
	if err != nil {
		return nil, err
	}
	final := map[int]int{}
	for e := range elems {
		id, n, _ := strings.Cut(e, ":")
		client, err := strconv.Atoi(id)
		if err != nil {
			return nil, fmt.Errorf("%s/b%s: not a bulk client's znode", bulkRoot, id)
		}
		final[client], _ = strconv.Atoi(n)
	}
	return final, nil
}

// idsClient takes unique ids: sequential znodes, the id the name the
// server gives.
func idsClient(cl *client, h *history, stop <-chan struct{}) {
	loop(cl, h, stop, func(c *zkclient.Conn, op *Op) error {
		name, err := c.Create(idsRoot+"/id-", nil, openACL, wire.ModePersistentSequential, 0)
		op.Kind, op.Elem, op.Outcome = "id", name, outcomeOf(err)
		return err
	})
}

// counterClient increments the counter: a getData, then a setData of the
// value plus one at the version read; a refused setData (another
// increment came first) is not an increment.
func counterClient(cl *client, h *history, stop <-chan struct{}) {
	loop(cl, h, stop, func(c *zkclient.Conn, op *Op) error {
		op.Kind, op.Outcome = "incr-not-made", Failed
		data, st, err := c.Get(counterPath, false)
		if err != nil {
			return err
		}
		v, err := strconv.Atoi(string(data))
		if err != nil {
			return err
		}
		op.Kind, op.From, op.Value = "incr", v, v+1
		_, err = c.Set(counterPath, []byte(strconv.Itoa(v+1)), st.Version)
		op.Outcome = outcomeOf(err)
		return err
	})
}

// sessionsClient checks ephemerals against their sessions, a session at
// a time: it opens one, creates an ephemeral, reads it back through the
// same session a few times (a sync, then exists: it must be there while
// the session lives), closes the session, and looks through another
// session (its own, kept for that) that the ephemeral is gone once the
// close was acknowledged (a write, then exists).
func sessionsClient(cl *client, rng *rand.Rand, h *history, stop <-chan struct{}) {
	n := 0
	for {
		select {
		case <-stop:
			return
		default:
		}
		watcher, err := cl.session()
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s, err := zkclient.Dial(cl.addrs, cl.timeout, nil)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		cl.cur.Store(s) // the ephemeral's session is the one that hops
		path := fmt.Sprintf("%s/c%d-s%d", ephRoot, cl.id, n)
		n++
		op := Op{Client: cl.id, Kind: "eph-create", Elem: path, Call: time.Now()}
		_, err = s.Create(path, nil, openACL, wire.ModeEphemeral, 0)
		op.Return, op.Outcome = time.Now(), outcomeOf(err)
		h.add(op)
		if err == nil {
			for i := 1 + rng.Intn(5); i > 0; i-- {
				op := Op{Client: cl.id, Kind: "eph-alive", Elem: path, Call: time.Now()}
				var ok bool
				if err = s.Sync(path); err == nil {
					_, ok, err = s.Exists(path, false)
				}
				op.Return = time.Now()
				switch {
				case err != nil:
					op.Outcome, op.Err = Unknown, err.Error() // nothing learned
				case ok:
					op.Outcome = OK
				default:
					op.Outcome, op.Err = Failed, "the ephemeral is gone while its session lives"
				}
				h.add(op)
				if err != nil {
					break
				}
				time.Sleep(time.Duration(rng.Intn(100)) * time.Millisecond)
			}
		}
		closedOn := s.Server()
		closed := s.Close() == nil
		cl.cur.Store(watcher)
		if !closed || op.Outcome != OK {
			continue
		}
		gone := Op{Client: cl.id, Kind: "eph-closed", Elem: path, Call: time.Now()}
		var there bool
		// A write first, not a sync: its server has applied the close
		// once it answers, since the close committed before it. Apache
		// ZooKeeper's leader answers its own client's sync at once, as a
		// read, before it applies a txn it has committed and a follower
		// may have acknowledged already (a mixed --hop run found it).
		if err = watcher.Check(ephRoot, -1); err == nil {
			_, there, err = watcher.Exists(path, false)
		}
		gone.Return = time.Now()
		switch {
		case err != nil:
			gone.Outcome, gone.Err = Unknown, err.Error()
		case there:
			gone.Outcome, gone.Err = Failed, fmt.Sprintf("the ephemeral outlives its session's acknowledged close (closed through %s, read through %s)", closedOn, watcher.Server())
		default:
			gone.Outcome = OK
		}
		h.add(gone)
		backOff(err)
	}
}

// queueClient enqueues and dequeues, half and half: an enqueue is a
// sequential create holding a unique element; a dequeue takes the first
// child in sequence, reads it and deletes it, and has it if the delete
// succeeds.
func queueClient(cl *client, rng *rand.Rand, h *history, stop <-chan struct{}) {
	n := 0
	loop(cl, h, stop, func(c *zkclient.Conn, op *Op) error {
		if rng.Intn(2) == 0 {
			op.Kind, op.Elem = "enqueue", fmt.Sprintf("q-%d-%d", cl.id, n)
			n++
			_, err := c.Create(queueRoot+"/item-", []byte(op.Elem), openACL, wire.ModePersistentSequential, 0)
			op.Outcome = outcomeOf(err)
			return err
		}
		kids, _, err := c.Children(queueRoot, false)
		if err != nil || len(kids) == 0 {
			return err // nothing to take: not an operation
		}
		sort.Strings(kids) // the sequence numbers, zero-padded, sort as numbers
		data, _, err := c.Get(queueRoot+"/"+kids[0], false)
		if err != nil {
			return err // taken meanwhile, or no answer: nothing taken
		}
		op.Kind, op.Elem = "dequeue", string(data)
		err = c.Delete(queueRoot+"/"+kids[0], -1)
		op.Outcome = outcomeOf(err)
		return err
	})
}

// finalQueue reads what is left in the queue: each item's element.
func finalQueue(addrs []string, timeout time.Duration) (map[string]bool, error) {
	return finalElements(addrs, queueRoot, timeout, func(c *zkclient.Conn, name string) (string, error) {
		data, _, err := c.Get(queueRoot+"/"+name, false)
		return string(data), err
	})
}
