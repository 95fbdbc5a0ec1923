package ztree

import (
	"math/rand"
	"strings"
	"testing"
)

// lessByParts is the item order spelled out: parent path, then name.
func lessByParts(a, b item) bool {
	if c := strings.Compare(a.parent(), b.parent()); c != 0 {
		return c < 0
	}
	return a.name() < b.name()
}

// TestLessItemOrdersByParentThenName checks the one-pass comparison against
// the order it stands for, on paths made to share prefixes, slashes at
// every place, and children keys.
func TestLessItemOrdersByParentThenName(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	alphabet := []string{"/", "a", "b", "-", ".", "0", "z", "~", "é"}
	randomPath := func() string {
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
	key := func() item {
		p := randomPath()
		if r.Intn(4) == 0 {
			return childrenKey(p)
		}
		return keyOf(p)
	}
	fixed := []item{keyOf("/"), childrenKey("/"), keyOf("/a"), childrenKey("/a"), keyOf("/a/b"),
		keyOf("/a-b"), keyOf("/a/b/c"), childrenKey("/a/b"), keyOf("/ab"), keyOf("/a/bc")}
	for _, a := range fixed {
		for _, b := range fixed {
			if got, want := lessItem(a, b), lessByParts(a, b); got != want {
				t.Fatalf("lessItem(%q/%d, %q/%d) = %v, want %v", a.rec, a.slash, b.rec, b.slash, got, want)
			}
		}
	}
	for i := 0; i < 200000; i++ {
		a, b := key(), key()
		if r.Intn(3) == 0 {
			// Share a long prefix so that the word-at-a-time loop runs.
			p := randomPath() + "/" + strings.Repeat("k", r.Intn(20))
			a, b = keyOf(p+randomPath()), keyOf(p+randomPath())
		}
		if got, want := lessItem(a, b), lessByParts(a, b); got != want {
			t.Fatalf("lessItem(%q/%d, %q/%d) = %v, want %v", a.rec, a.slash, b.rec, b.slash, got, want)
		}
	}
}
