package ztree

import (
	"encoding/binary"
	"hash/crc32"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"testing"

	"zkd/wire"
)

// lessByParts is the path order spelled out: parent path, then name.
func lessByParts(a, b item) bool {
	if c := strings.Compare(a.parent(), b.parent()); c != 0 {
		return c < 0
	}
	return a.name() < b.name()
}

// randomPaths makes paths that share prefixes, with slashes at every place
// and names of every length around the eight bytes of a name prefix.
func randomPaths(r *rand.Rand) func() string {
	alphabet := []string{"/", "a", "b", "-", ".", "0", "z", "~", "é"}
	return func() string {
		var sb strings.Builder
		sb.WriteString("/")
		for n := r.Intn(14); n > 0; n-- {
			c := alphabet[r.Intn(len(alphabet))]
			if c == "/" && strings.HasSuffix(sb.String(), "/") {
				c = "x"
			}
			sb.WriteString(c)
		}
		p := sb.String()
		if len(p) > 1 && strings.HasSuffix(p, "/") {
			p += "q"
		}
		return p
	}
}

// TestLessPathOrdersByParentThenName checks the one-pass comparison that
// breaks ties between items against the order it stands for.
func TestLessPathOrdersByParentThenName(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	randomPath := randomPaths(r)
	fixed := []string{"/", "", "/a", "/a/b", "/a-b", "/a/b/c", "/ab", "/a/bc"}
	for _, a := range fixed {
		for _, b := range fixed {
			if got, want := lessPath(a, b), lessByParts(keyOf(a), keyOf(b)); got != want {
				t.Fatalf("lessPath(%q, %q) = %v, want %v", a, b, got, want)
			}
		}
	}
	for i := 0; i < 200000; i++ {
		a, b := randomPath(), randomPath()
		if r.Intn(3) == 0 {
			// Share a long prefix so that the word-at-a-time loop runs.
			p := randomPath() + "/" + strings.Repeat("k", r.Intn(20))
			a, b = p+randomPath(), p+randomPath()
		}
		if got, want := lessPath(a, b), lessByParts(keyOf(a), keyOf(b)); got != want {
			t.Fatalf("lessPath(%q, %q) = %v, want %v", a, b, got, want)
		}
	}
}

// TestLessItemSortsSiblingsByName checks what readers rely on: the
// children of one znode compare as their names do, whether the names
// differ in their first eight bytes (decided in the slot) or only after
// them (decided by the records), and the children key of their parent
// comes before them all.
func TestLessItemSortsSiblingsByName(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	randomPath := randomPaths(r)
	for i := 0; i < 100000; i++ {
		parent := randomPath()
		if r.Intn(4) == 0 {
			parent = "/"
		}
		name := func() string {
			n := strings.Repeat("n", r.Intn(10)) + randomPath()[1:]
			return strings.ReplaceAll(n, "/", "s") + "x"
		}
		base := parent + "/"
		if parent == "/" {
			base = "/"
		}
		na, nb := name(), name()
		a, b := keyOf(base+na), keyOf(base+nb)
		if got, want := lessItem(a, b), na < nb; got != want {
			t.Fatalf("lessItem(%q, %q) = %v, want %v", a.path(), b.path(), got, want)
		}
		if lessItem(a, a) {
			t.Fatalf("lessItem(%q, itself) = true", a.path())
		}
		if pk := childrenKey(parent); lessItem(a, pk) || !lessItem(pk, a) {
			t.Fatalf("%q does not follow the children key of %q", a.path(), parent)
		}
	}
}

// TestLessItemIsATotalOrder checks that lessItem orders any two paths one
// way, transitively, and as (parent hash, name prefix, parent, name).
func TestLessItemIsATotalOrder(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	randomPath := randomPaths(r)
	paths := make([]string, 3000)
	for i := range paths {
		paths[i] = randomPath()
	}
	items := make([]item, 0, len(paths))
	seen := map[string]bool{}
	for _, p := range paths {
		if !seen[p] {
			seen[p] = true
			items = append(items, keyOf(p))
		}
	}
	slices.SortFunc(items, func(a, b item) int {
		if lessItem(a, b) {
			return -1
		}
		if lessItem(b, a) {
			return 1
		}
		t.Fatalf("lessItem cannot tell %q from %q", a.path(), b.path())
		return 0
	})
	for i := 1; i < len(items); i++ {
		a, b := items[i-1], items[i]
		want := a.ph < b.ph || a.ph == b.ph && (a.pfx < b.pfx || a.pfx == b.pfx && lessByParts(a, b))
		if !want || lessItem(b, a) {
			t.Fatalf("%q sorted before %q", a.path(), b.path())
		}
	}
}

// TestCrcWordFeedsBigEndianBytes checks the table-driven Stat hashing
// against the byte-at-a-time CRC of the same big-endian bytes.
func TestCrcWordFeedsBigEndianBytes(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for i := 0; i < 10000; i++ {
		v, n := r.Uint64(), 8
		if i%2 == 1 {
			n = 4
		}
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], v)
		start := r.Uint32()
		want := ^crc32.Update(^start, crc32.IEEETable, b[8-n:])
		if got := crcWord(start, v, n); got != want {
			t.Fatalf("crcWord(%#x, %#x, %d) = %#x, want %#x", start, v, n, got, want)
		}
	}
}

// TestOnlyPoolRecordsAreReused: a record the pool did not make (a create's,
// exactly as long as its content) is never kept for reuse, since a later
// record of its size class may be longer; the records setData makes are,
// and the pool's bit in the ACL varint leaves the znode's ACL as it was.
func TestOnlyPoolRecordsAreReused(t *testing.T) {
	tr := New(Options{})
	tr.TrackReaders()
	acl := tr.acl.intern(ReadACL)
	if _, err := tr.createNode("/a", []byte("x"), ReadACL, 0, 0, 1, 1); err != nil {
		t.Fatal(err)
	}
	it, _ := tr.get("/a")
	if pooled, _ := it.pooledSize(); pooled {
		t.Fatal("a create's record is marked as the pool's")
	}
	for zxid := int64(2); zxid <= 4; zxid++ {
		if _, err := tr.setData("/a", []byte("yz"), int32(zxid-1), zxid, zxid); err != nil {
			t.Fatal(err)
		}
		it, _ := tr.get("/a")
		if pooled, _ := it.pooledSize(); !pooled {
			t.Fatal("a setData's record is not marked as the pool's")
		}
		if m := it.meta(); m.ACL != acl || m.Version != int32(zxid-1) || it.data() != "yz" {
			t.Fatalf("after setData: acl %d version %d data %q, want %d, %d, \"yz\"", m.ACL, m.Version, it.data(), acl, zxid-1)
		}
		// The create's record is not kept; each setData's record is,
		// once the next setData replaces it.
		if got, want := len(tr.pool.retired), int(zxid-2); got != want {
			t.Fatalf("after setData %d: %d records kept, want %d", zxid-1, got, want)
		}
	}
}

// TestCellCacheHoldsMostCells makes 10,000 znodes cells, as a setData
// load does, and looks each one up in the cell cache: a path whose own
// slot another path's cell holds goes to its neighbour, so the cache
// misses only where three or more paths pick the same pair of slots
// (4 % of these; with one slot a path it missed 10 %).
func TestCellCacheHoldsMostCells(t *testing.T) {
	tr := New(Options{})
	tr.TrackReaders()
	const n = 10_000
	paths := make([]string, n)
	for i := range paths {
		paths[i] = "/n-" + strconv.Itoa(i)
		tr.Apply(&wire.TxnHeader{Zxid: int64(i + 1), Type: wire.OpCreate, Time: 1},
			&wire.CreateTxn{Path: paths[i], Data: []byte("x"), ACL: OpenACL})
	}
	tr.Publish()
	for i, p := range paths {
		tr.Apply(&wire.TxnHeader{Zxid: int64(n + i + 1), Type: wire.OpSetData, Time: 1},
			&wire.SetDataTxn{Path: p, Data: []byte("y"), Version: 1})
	}
	tr.Publish()
	found := 0
	for _, p := range paths {
		if c, _ := tr.cache.find(keyOf(p)); c != nil {
			found++
		}
	}
	if found < n*93/100 {
		t.Fatalf("the cell cache holds %d of %d cells, want at least 93 %%", found, n)
	}
	t.Logf("the cell cache holds %d of %d cells", found, n)
}
