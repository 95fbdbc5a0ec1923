package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"zkd/internal/java"
	"zkd/wal"
	"zkd/wire"
)

const snapshotUsage = `usage: zkd snapshot dump [-d] FILE   the znodes and sessions, as ZooKeeper's SnapshotFormatter prints them
       zkd snapshot json FILE        the tree as ZooKeeper's SnapshotFormatter -json prints it
                                     (also: zkd snapshot dump --json FILE)
  -d   with each znode's data (base64) in place of its length
FILE is a snapshot of ZooKeeper's or zkd's (snapshot.<zxid>, plain or .gz, .snappy, .zst).
`

// snapshotCmd is zkd snapshot: it prints a snapshot file as ZooKeeper's
// SnapshotFormatter does, byte for byte given the same time zone, so that
// tools reading that output keep working. Exit codes: 0 printed, 1 the
// file could not be read, 2 wrong arguments.
func snapshotCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, snapshotUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	mode, rest := args[0], args[1:]
	data := false
	switch mode {
	case "dump":
		for len(rest) > 0 && strings.HasPrefix(rest[0], "-") && len(rest[0]) > 1 {
			switch rest[0] {
			case "-d":
				data = true
			case "-json", "--json": // as SnapshotFormatter -json, for tooling
				mode = "json"
			case "-h", "-help", "--help":
				fmt.Fprint(stdout, snapshotUsage)
				return 0
			default:
				fmt.Fprintf(stderr, "zkd snapshot dump: unknown option %s\n%s", rest[0], snapshotUsage)
				return 2
			}
			rest = rest[1:]
		}
	case "json":
		if len(rest) > 0 && (rest[0] == "-h" || rest[0] == "-help" || rest[0] == "--help") {
			fmt.Fprint(stdout, snapshotUsage)
			return 0
		}
	default:
		fmt.Fprintf(stderr, "zkd snapshot: %q is not dump or json\n%s", mode, snapshotUsage)
		return 2
	}
	if len(rest) != 1 {
		fmt.Fprintf(stderr, "zkd snapshot %s: one snapshot file, please\n%s", mode, snapshotUsage)
		return 2
	}
	file := rest[0]
	if f, err := os.Open(file); err != nil {
		fmt.Fprintf(stderr, "zkd snapshot: %v\n", err)
		return 1
	} else {
		f.Close()
	}
	t, err := readSnapshotTree(file, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "zkd snapshot: %v\n", err)
		return 1
	}
	w := bufio.NewWriterSize(stdout, 1<<16)
	if mode == "json" {
		t.printJSON(w, time.Now().UnixMilli())
	} else {
		t.printDetails(w, data, filepath.Base(file))
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(stderr, "zkd snapshot: writing: %v\n", err)
		return 1
	}
	return 0
}

// dumpZone is the time zone the dumps print times in: the local one, as
// ZooKeeper's tools print them in the JVM's.
var dumpZone = time.Local

// snapNode is a znode as the formatter needs it: its record and its
// children in the order ZooKeeper's DataNode iterates them.
type snapNode struct {
	st       wire.StatPersisted
	data     []byte
	children []string
	order    map[string]uint64 // insertion order, for the hash order
}

// snapTree is a snapshot read whole, keyed by path ("" is the root, as
// in the file).
type snapTree struct {
	nodes    map[string]*snapNode
	count    int
	sessions []int64
	timeouts map[int64]int32
	order    map[int64]uint64
}

func readSnapshotTree(file string, stderr io.Writer) (*snapTree, error) {
	t := &snapTree{nodes: map[string]*snapNode{}, timeouts: map[int64]int32{}, order: map[int64]uint64{}}
	progress := progressTo(stderr, "reading "+filepath.Base(file))
	var seq uint64
	err := wal.ScanSnapshot(file, wal.SnapshotVisitor{
		Session: func(id int64, timeout int32) {
			if _, ok := t.timeouts[id]; !ok {
				t.sessions = append(t.sessions, id)
				seq++
				t.order[id] = seq
			}
			t.timeouts[id] = timeout
		},
		Node: func(path string, data []byte, _ []wire.ACL, st wire.StatPersisted) error {
			n := &snapNode{st: st}
			if data != nil {
				n.data = append([]byte{}, data...)
			}
			t.nodes[path] = n
			t.count++
			if path == "" {
				return nil
			}
			i := strings.LastIndexByte(path, '/')
			parent := t.nodes[path[:max(i, 0)]]
			if i < 0 || parent == nil {
				return fmt.Errorf("znode %q comes before its parent", path)
			}
			child := path[i+1:]
			if parent.order == nil {
				parent.order = map[string]uint64{}
			}
			if _, ok := parent.order[child]; !ok {
				seq++
				parent.order[child] = seq
				parent.children = append(parent.children, child)
			}
			return nil
		},
		Progress: progress,
	})
	if err != nil {
		return nil, err
	}
	if t.nodes[""] == nil {
		return nil, fmt.Errorf("%s holds no root znode", file)
	}
	t.nodes["/"] = t.nodes[""]
	t.count++ // ZooKeeper's tree holds the root under "" and "/"
	return t, nil
}

// childrenOf lists n's children as its Java HashSet (initial capacity 8,
// grown one child at a time) iterates them.
func childrenOf(n *snapNode) []string {
	return java.Order(append([]string(nil), n.children...), java.StringHash, n.order, java.GrownCap(len(n.children), 8))
}

func (t *snapTree) printDetails(w *bufio.Writer, data bool, name string) {
	fmt.Fprintf(w, "ZNode Details (count=%d):\n", t.count)
	last := t.printZnode(w, "/", data)
	w.WriteString("----\n")
	w.WriteString("Session Details (sid, timeout, ephemeralCount):\n")
	ephemerals := map[int64]int{}
	for path, n := range t.nodes {
		if o := n.st.EphemeralOwner; path != "/" && o != 0 && o != math.MinInt64 {
			ephemerals[o]++
		}
	}
	ids := java.Order(append([]int64(nil), t.sessions...), java.LongHash, t.order, java.GrownCap(len(t.sessions), 16))
	for _, id := range ids {
		fmt.Fprintf(w, "%s, %d, %d\n", javaHex(id), t.timeouts[id], ephemerals[id])
	}
	if z := zxidOfName(name); z > last {
		last = z
	}
	fmt.Fprintf(w, "----\nLast zxid: 0x%x\n", uint64(last))
}

// javaHex is Java's String.format("%#016x", v): the width counts the 0x.
func javaHex(v int64) string { return fmt.Sprintf("0x%014x", uint64(v)) }

// zxidOfName is the zxid a snapshot file's name gives, -1 for none.
func zxidOfName(name string) int64 {
	parts := strings.Split(name, ".")
	if len(parts) < 2 || parts[0] != "snapshot" {
		return -1
	}
	z, err := strconv.ParseUint(parts[1], 16, 64)
	if err != nil {
		return -1
	}
	return int64(z)
}

func (t *snapTree) printZnode(w *bufio.Writer, path string, data bool) int64 {
	w.WriteString("----\n")
	n := t.nodes[path]
	w.WriteString(path)
	w.WriteString("\n")
	st := &n.st
	fmt.Fprintf(w, "  cZxid = %s\n  ctime = %s\n", javaHex(st.Czxid), java.Date(time.UnixMilli(st.Ctime).In(dumpZone)))
	fmt.Fprintf(w, "  mZxid = %s\n  mtime = %s\n", javaHex(st.Mzxid), java.Date(time.UnixMilli(st.Mtime).In(dumpZone)))
	fmt.Fprintf(w, "  pZxid = %s\n  cversion = %d\n  dataVersion = %d\n  aclVersion = %d\n",
		javaHex(st.Pzxid), st.Cversion, st.Version, st.Aversion)
	fmt.Fprintf(w, "  ephemeralOwner = %s\n", javaHex(st.EphemeralOwner))
	if data {
		fmt.Fprintf(w, "  data = %s\n", base64.StdEncoding.EncodeToString(n.data))
	} else {
		fmt.Fprintf(w, "  dataLength = %d\n", len(n.data))
	}
	last := max(st.Mzxid, st.Pzxid)
	prefix := path + "/"
	if path == "/" {
		prefix = "/"
	}
	for _, c := range childrenOf(n) {
		last = max(last, t.printZnode(w, prefix+c, data))
	}
	return last
}

// printJSON prints the tree as ZooKeeper's SnapshotFormatter -json does
// (the ncdu export format), its timestamp now.
func (t *snapTree) printJSON(w *bufio.Writer, now int64) {
	fmt.Fprintf(w, `[1,0,{"progname":"SnapshotFormatter.java","progver":"0.01","timestamp":%d}`, now)
	ino := 1000 // where ZooKeeper's formatter starts counting
	var walk func(path string)
	walk = func(path string) {
		n := t.nodes[path]
		name := path
		if path != "/" {
			name = path[strings.LastIndexByte(path, '/')+1:]
		}
		ino++
		w.WriteString(",")
		node := fmt.Sprintf(`{"name":"%s","asize":%d,"dsize":%d,"dev":0,"ino":%d}`, java.JSONQuote(name), len(n.data), len(n.data), ino)
		if len(n.children) == 0 {
			w.WriteString(node)
			return
		}
		w.WriteString("[" + node)
		prefix := path + "/"
		if path == "/" {
			prefix = "/"
		}
		for _, c := range childrenOf(n) {
			walk(prefix + c)
		}
		w.WriteString("]")
	}
	walk("/")
	w.WriteString("]")
}

// progressTo returns a progress callback that shows how far reading has
// got on stderr, when stderr is a terminal; nil otherwise, so that
// redirected output stays clean.
func progressTo(stderr io.Writer, what string) func(read, size int64) {
	f, ok := stderr.(*os.File)
	if !ok {
		return nil
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return func(read, size int64) {
		if size > 0 {
			fmt.Fprintf(f, "\r%s: %d of %d MB (%d%%)", what, read>>20, size>>20, read*100/size)
		} else {
			fmt.Fprintf(f, "\r%s: %d MB", what, read>>20)
		}
		if size > 0 && read >= size {
			fmt.Fprintln(f)
		}
	}
}
