package ztree

import (
	"strings"
	"sync"
)

// NamespaceStat summarises sizes counted per namespace (a path's first
// component), as ZooKeeper's mntr reports reads and writes per namespace.
type NamespaceStat struct{ Count, Sum, Min, Max int64 }

// Add counts one size.
func (s *NamespaceStat) Add(n int64) {
	if s.Count == 0 || n < s.Min {
		s.Min = n
	}
	s.Max = max(s.Max, n)
	s.Count++
	s.Sum += n
}

// Merge adds another summary's counts.
func (s *NamespaceStat) Merge(o NamespaceStat) {
	if o.Count == 0 {
		return
	}
	if s.Count == 0 || o.Min < s.Min {
		s.Min = o.Min
	}
	s.Max = max(s.Max, o.Max)
	s.Count += o.Count
	s.Sum += o.Sum
}

// TopNamespace is the first component of path, "" for the root: the key
// ZooKeeper counts reads and writes under.
func TopNamespace(path string) string {
	path = strings.TrimPrefix(path, "/")
	ns, _, _ := strings.Cut(path, "/")
	return ns
}

// namespaceStats is the tree's count of writes per namespace: the path's
// length plus the data's, for every znode created or data set (replayed
// txns included), as ZooKeeper's DataTree counts them.
type namespaceStats struct {
	mu sync.Mutex
	m  map[string]*NamespaceStat
}

func (n *namespaceStats) add(path string, bytes int) {
	ns := TopNamespace(path)
	if ns == "" {
		return
	}
	n.mu.Lock()
	s := n.m[ns]
	if s == nil {
		if n.m == nil {
			n.m = map[string]*NamespaceStat{}
		}
		s = &NamespaceStat{}
		n.m[strings.Clone(ns)] = s // the path may be a request's buffer
	}
	s.Add(int64(len(path) + bytes))
	n.mu.Unlock()
}

// ResetNamespaceWrites zeroes the writes counted per namespace; the
// namespaces stay, with nothing counted.
func (t *Tree) ResetNamespaceWrites() {
	n := &t.nsWrites
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, v := range n.m {
		*v = NamespaceStat{}
	}
}

// NamespaceWrites returns the writes counted per namespace so far.
func (t *Tree) NamespaceWrites() map[string]NamespaceStat {
	n := &t.nsWrites
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]NamespaceStat, len(n.m))
	for k, v := range n.m {
		out[k] = *v
	}
	return out
}
