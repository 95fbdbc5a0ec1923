package engine

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// TestReadsSeeWholeRecordsWhileWritesReuseThem: the tree reuses the
// records setData replaces once no reader can hold them. Under writes of
// one size to a few znodes (so records are reused all the time), with
// getChildren of their parent, four-letter words and snapshots going on
// meanwhile, clients reading the same znodes must see each version whole:
// the data of a getData is the data one setData wrote, with nothing of
// another over it, and getChildren returns the znodes' names. Run with
// -race, a reuse before its reader (a connection or the snapshot writer)
// left is also a data race on the record.
func TestReadsSeeWholeRecordsWhileWritesReuseThem(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.SnapCount = 500 // several snapshots walk the tree during the test
	cfg.FourLetterWords = "*"
	s := startServer(t, cfg, Options{})
	addr := s.Addr().String()
	dial := func() *zk.Conn {
		c, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogger(quietZK{}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}

	const nodes, size = 8, 1024
	// version k of the data: k in the first 8 bytes, then one byte that
	// k determines, repeated.
	data := func(k uint64) []byte {
		b := make([]byte, size)
		binary.BigEndian.PutUint64(b, k)
		for i := 8; i < size; i++ {
			b[i] = byte(k*7 + 1)
		}
		return b
	}
	whole := func(b []byte) error {
		if len(b) != size {
			return fmt.Errorf("%d bytes, want %d", len(b), size)
		}
		k := binary.BigEndian.Uint64(b)
		for i := 8; i < size; i++ {
			if b[i] != byte(k*7+1) {
				return fmt.Errorf("version %d has byte %d = %d, want %d", k, i, b[i], byte(k*7+1))
			}
		}
		return nil
	}
	setup := dial()
	if _, err := setup.Create("/r", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	// Enough znodes besides that a snapshot's walk takes a while, with
	// writes reusing records meanwhile.
	for i := 0; i < 40; i++ {
		ops := make([]interface{}, 0, 500)
		for j := 0; j < 500; j++ {
			ops = append(ops, &zk.CreateRequest{Path: fmt.Sprintf("/pad-%d-%d", i, j), Data: []byte("x"), Acl: zk.WorldACL(zk.PermAll)})
		}
		if _, err := setup.Multi(ops...); err != nil {
			t.Fatal(err)
		}
	}
	var names = map[string]bool{}
	for i := 0; i < nodes; i++ {
		name := fmt.Sprintf("node-%d", i)
		names[name] = true
		if _, err := setup.Create("/r/"+name, data(0), 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}

	var (
		wg, readers sync.WaitGroup
		stop        atomic.Bool
		next        atomic.Uint64
		checked     atomic.Int64
		failed      = make(chan error, 64)
	)
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	for w := 0; w < 2; w++ {
		c := dial()
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 300 && !stop.Load(); i++ {
					k := next.Add(1)
					if _, err := c.Set(fmt.Sprintf("/r/node-%d", k%nodes), data(k), -1); err != nil {
						fail(err)
						return
					}
				}
			}()
		}
	}
	for r := 0; r < 3; r++ {
		c := dial()
		for g := 0; g < 4; g++ {
			readers.Add(1)
			go func() {
				defer readers.Done()
				for i := 0; !stop.Load(); i++ {
					if i%8 == 7 {
						kids, _, err := c.Children("/r")
						if err != nil {
							fail(err)
							return
						}
						for _, k := range kids {
							if !names[k] {
								fail(fmt.Errorf("getChildren returned %q", k))
							}
						}
						continue
					}
					b, _, err := c.Get(fmt.Sprintf("/r/node-%d", i%nodes))
					if err != nil {
						fail(err)
						return
					}
					if err := whole(b); err != nil {
						fail(err)
					}
					checked.Add(1)
				}
			}()
		}
	}
	readers.Add(1)
	go func() {
		defer readers.Done()
		for !stop.Load() {
			for _, w := range []string{"mntr", "dump", "cons"} {
				// Here to read the tree while writes reuse its records,
				// not to time the answer: a loaded machine running the
				// race detector may take more than the usual 5 s.
				if _, err := FourLetterWordWithin(addr, w, time.Minute); err != nil {
					fail(err)
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case err := <-failed:
		stop.Store(true)
		wg.Wait()
		readers.Wait()
		t.Fatal(err)
	case <-time.After(2 * time.Minute):
		stop.Store(true)
		t.Fatal("the writes did not finish within 2 minutes")
	}
	stop.Store(true)
	readers.Wait()
	select {
	case err := <-failed:
		t.Fatal(err)
	default:
	}
	if checked.Load() == 0 {
		t.Fatal("no read was checked")
	}
	// Every znode ends whole too.
	for i := 0; i < nodes; i++ {
		b, _, err := setup.Get(fmt.Sprintf("/r/node-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if err := whole(b); err != nil {
			t.Fatal(err)
		}
	}
}

type quietZK struct{}

func (quietZK) Printf(string, ...interface{}) {}
