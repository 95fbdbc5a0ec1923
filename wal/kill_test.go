package wal_test

import (
	"bufio"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"zkd/wal"
	"zkd/wire"
	"zkd/ztree"
)

// Keys the writer process spreads its writes over: txn z writes "v<z>" to
// /w/<z mod keys>.
const killKeys = 300

func TestMain(m *testing.M) {
	if dir := os.Getenv("ZKD_WAL_WRITER_DIR"); dir != "" {
		os.Exit(writerProcess(dir))
	}
	os.Exit(m.Run())
}

// writerProcess is the process the SIGKILL test kills: it writes as fast
// as it can with 256 txns in flight, applying each txn once durable, and
// prints "durable <zxid>" after every fsync — an acknowledgement.
func writerProcess(dir string) int {
	s, err := openStore(wal.Options{Dir: dir, Logger: quiet, SnapCount: 3000, PreAllocSize: 1 << 20})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	durable := make(chan int64, 1024)
	tree := treeOf(s)
	fmt.Fprintf(out, "ready %d\n", tree.Zxid())
	out.Flush()
	created := map[string]bool{}
	v := tree.Published()
	if _, ok := v.Get("/w"); !ok {
		created["/w"] = false
	}
	var inflight []ztree.Txn
	zxid := tree.Zxid()
	prep := func(req *ztree.Request) {
		zxid++
		req.Zxid, req.Time, req.Session = zxid, zxid, 0
		txn, _ := tree.Prep(req)
		inflight = append(inflight, txn)
		err := s.Append(logged(&txn), func(err error) {
			if err == nil {
				durable <- txn.Header.Zxid
			}
		})
		if err != nil {
			os.Exit(1)
		}
	}
	if _, ok := created["/w"]; ok {
		prep(&ztree.Request{Op: wire.OpCreate, Body: &wire.CreateRequest{Path: "/w", ACL: ztree.OpenACL}})
	}
	for {
		for len(inflight) < 256 {
			next := zxid + 1
			p := fmt.Sprintf("/w/%d", next%killKeys)
			data := []byte(fmt.Sprintf("v%d", next))
			if _, ok := v.Get(p); ok || created[p] {
				prep(&ztree.Request{Op: wire.OpSetData, Body: &wire.SetDataRequest{Path: p, Data: data, Version: -1}})
			} else {
				created[p] = true
				prep(&ztree.Request{Op: wire.OpCreate, Body: &wire.CreateRequest{Path: p, Data: data, ACL: ztree.OpenACL}})
			}
		}
		// Apply what is durable, in order, then acknowledge it.
		z := <-durable
		last := z
		for more := true; more; {
			select {
			case z := <-durable:
				last = z
			default:
				more = false
			}
		}
		for len(inflight) > 0 && inflight[0].Header.Zxid <= last {
			tree.Apply(&inflight[0].Header, inflight[0].Record)
			inflight = inflight[1:]
		}
		tree.Publish()
		fmt.Fprintf(out, "durable %d\n", last)
		out.Flush()
	}
}

// TestSIGKILLLosesNoAcknowledgedWrite runs the writer process on a real
// directory with real fsync and kills it with SIGKILL at a random moment,
// many times; log rolls and background snapshots happen along the way.
// After each kill the directory must recover to a tree that holds every
// acknowledged write: each key's data is the newest write to it at or
// before the recovered zxid, which is at or past the last acknowledged.
func TestSIGKILLLosesNoAcknowledgedWrite(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewSource(time.Now().UnixNano()))
	kills := 25
	if testing.Short() {
		kills = 5
	}
	deadline := time.Now().Add(90 * time.Second)
	acked := int64(0)
	for k := 0; k < kills && time.Now().Before(deadline); k++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "ZKD_WAL_WRITER_DIR="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1<<16)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		first := <-lines
		if !strings.HasPrefix(first, "ready ") {
			t.Fatalf("writer said %q", first)
		}
		if z, _ := strconv.ParseInt(strings.TrimPrefix(first, "ready "), 10, 64); z < acked {
			t.Fatalf("kill %d: the writer restarted at zxid %d, but %d was acknowledged", k, z, acked)
		}
		time.Sleep(time.Duration(20+r.Intn(400)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		for l := range lines { // everything printed before the kill counts
			if z, err := strconv.ParseInt(strings.TrimPrefix(l, "durable "), 10, 64); err == nil && z > acked {
				acked = z
			}
		}
		cmd.Wait()
		checkKilledDir(t, dir, acked, k)
	}
	if acked < 1000 {
		t.Fatalf("only %d txns acknowledged over the run: the writer barely ran", acked)
	}
	t.Logf("%d txns acknowledged across the kills", acked)
}

func checkKilledDir(t *testing.T, dir string, acked int64, k int) {
	t.Helper()
	s, err := openStore(wal.Options{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatalf("kill %d: recovery: %v", k, err)
	}
	defer s.Close()
	v := treeOf(s).Published()
	got := v.Zxid()
	if got < acked {
		t.Fatalf("kill %d: recovered to zxid %d, but %d was acknowledged", k, got, acked)
	}
	for key := int64(0); key < killKeys; key++ {
		// The newest write to this key at or before the recovered zxid.
		z := got - ((got-key)%killKeys+killKeys)%killKeys
		n, ok := v.Get(fmt.Sprintf("/w/%d", key))
		if z <= 1 {
			continue // not written yet (zxid 1 created /w)
		}
		if !ok || n.Data != fmt.Sprintf("v%d", z) || n.Stat.Mzxid != z {
			t.Fatalf("kill %d: /w/%d holds %q (mzxid %d); the write of txn %d is missing (recovered to %d, acknowledged %d)",
				k, key, n.Data, n.Stat.Mzxid, z, got, acked)
		}
	}
}
