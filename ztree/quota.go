package ztree

import (
	"sort"
	"strconv"
	"strings"

	"zkd/wire"
)

// Quotas: a quota on path P is the pair of znodes
// /zookeeper/quota/P/zookeeper_limits and /zookeeper/quota/P/zookeeper_stats,
// whose data is a StatsTrack string ("count=…,bytes=…" plus optional
// ";countHardLimit=…;byteHardLimit=…"). The tree keeps the stats node of the
// deepest quota above every change current, as ZooKeeper's DataTree does:
// a local update that bumps no version and fires no watch.

// StatsTrack is ZooKeeper's StatsTrack: named counters, -1 when absent.
type StatsTrack map[string]int64

// ParseStatsTrack reads a StatsTrack's string form, as ZooKeeper does:
// pairs split at ',' and ';', an empty value read as -1.
func ParseStatsTrack(s string) StatsTrack {
	st := StatsTrack{}
	for _, pair := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' }) {
		k, v, _ := strings.Cut(pair, "=")
		v, _, _ = strings.Cut(v, "=") // "bytes=5=" is how new keys hide from old parsers
		if v == "" {
			st[k] = -1
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			st[k] = n
		}
	}
	return st
}

// Get is the counter named k, -1 when it is absent.
func (st StatsTrack) Get(k string) int64 {
	if v, ok := st[k]; ok {
		return v
	}
	return -1
}

// String formats like StatsTrack.toString: count and bytes first, then any
// other keys sorted, after an extra '=' and separated by ';'.
func (st StatsTrack) String() string {
	b := []byte("count=")
	b = strconv.AppendInt(b, st.Get("count"), 10)
	b = append(b, ",bytes="...)
	b = strconv.AppendInt(b, st.Get("bytes"), 10)
	var keys []string
	for k := range st {
		if k != "count" && k != "bytes" {
			keys = append(keys, k)
		}
	}
	if len(keys) > 0 {
		sort.Strings(keys)
		b = append(b, '=')
		for _, k := range keys {
			b = append(b, ';')
			b = append(b, k...)
			b = append(b, '=')
			b = strconv.AppendInt(b, st[k], 10)
		}
	}
	return string(b)
}

func quotaStatPath(prefix string) string  { return quotaPath + prefix + "/" + quotaStatNode }
func quotaLimitPath(prefix string) string { return quotaPath + prefix + "/" + quotaLimitNode }

// maxQuotaPrefix is the deepest path at or above path that has a quota, or
// "" (a quota on the root is not kept, as in ZooKeeper).
func (t *Tree) maxQuotaPrefix(path string) string {
	if len(t.quotas) == 0 {
		return ""
	}
	for p := path; p != rootPath && p != ""; p, _ = splitPath(p) {
		if _, ok := t.quotas[p]; ok {
			return p
		}
	}
	return ""
}

func (t *Tree) quotaCreated(path, parent, name string, bytes int64) {
	if strings.HasPrefix(parent, quotaPath) && (name == quotaLimitNode || name == quotaStatNode) {
		if prefix := parent[len(quotaPath):]; prefix != "" {
			if name == quotaLimitNode {
				t.quotas[strings.Clone(prefix)] = struct{}{}
			} else {
				t.recountQuota(prefix)
			}
		}
	}
	t.quotaChanged(path, bytes, 1)
}

func (t *Tree) quotaDeleted(path string, bytes int64) {
	parent, name := splitPath(path)
	if strings.HasPrefix(parent, quotaPath) && name == quotaLimitNode {
		if prefix := parent[len(quotaPath):]; prefix != "" {
			delete(t.quotas, prefix)
		}
	}
	t.quotaChanged(path, -bytes, -1)
}

// quotaChanged adds to the usage of the quota covering path.
func (t *Tree) quotaChanged(path string, bytes int64, count int64) {
	prefix := t.maxQuotaPrefix(path)
	if prefix == "" {
		return
	}
	statPath := quotaStatPath(prefix)
	node, ok := t.get(statPath)
	if !ok {
		return
	}
	st := ParseStatsTrack(node.data())
	st["count"] = st.Get("count") + count
	st["bytes"] = st.Get("bytes") + bytes
	t.setLocalData(node, st.String())
}

// recountQuota sets the stats node of prefix to the count and bytes of
// its subtree, itself included.
func (t *Tree) recountQuota(prefix string) {
	var count, bytes int64
	var walk func(path string)
	walk = func(path string) {
		it, ok := t.get(path)
		if !ok {
			return
		}
		count++
		bytes += int64(len(it.data()))
		var kids []string
		eachChild(&t.st.shards, newest, path, func(c item) bool {
			kids = append(kids, c.path())
			return true
		})
		for _, k := range kids {
			walk(k)
		}
	}
	walk(prefix)
	node, ok := t.get(quotaStatPath(prefix))
	if !ok {
		return
	}
	t.setLocalData(node, StatsTrack{"count": count, "bytes": bytes}.String())
}

// setLocalData replaces a znode's data without touching its Stat versions,
// the way ZooKeeper maintains quota stats nodes. Unlike ZooKeeper, the
// approximate data size follows, so a tree loaded from a snapshot reports
// the same size as the tree that wrote it.
func (t *Tree) setLocalData(node item, data string) {
	t.st.dataSize += int64(len(data) - len(node.data()))
	m := node.meta()
	t.replace(node, makeItem(node, &m, data))
}

// RebuildQuotas finds every quota limit node and recounts its stats node,
// as ZooKeeper does after loading a snapshot.
func (t *Tree) RebuildQuotas() {
	t.quotas = make(map[string]struct{})
	var walk func(path string)
	walk = func(path string) {
		var kids []item
		eachChild(&t.st.shards, newest, path, func(c item) bool {
			kids = append(kids, c)
			return true
		})
		for _, k := range kids {
			if k.name() == quotaLimitNode {
				if prefix := path[len(quotaPath):]; prefix != "" {
					t.quotas[strings.Clone(prefix)] = struct{}{}
					t.recountQuota(prefix)
				}
				continue
			}
			walk(k.path())
		}
	}
	walk(quotaPath)
}

// checkQuota is ZooKeeperServer.checkQuota: with enforcement on, a create
// (count +1) or setData (bytes +diff) that takes the quota covering path
// past a hard limit is QUOTAEXCEEDED. Soft limits only count.
func (t *Tree) checkQuota(path string, bytesDiff, countDiff int64) error {
	if !t.opts.EnforceQuota {
		return nil
	}
	prefix := t.maxQuotaPrefix(path)
	if prefix == "" {
		return nil
	}
	limitNode, ok := t.get(quotaLimitPath(prefix))
	if !ok {
		return nil
	}
	limit := ParseStatsTrack(limitNode.data())
	checkCount := countDiff != 0 && (limit.Get("count") > -1 || limit.Get("countHardLimit") > -1)
	checkBytes := bytesDiff != 0 && (limit.Get("bytes") > -1 || limit.Get("byteHardLimit") > -1)
	if !checkCount && !checkBytes {
		return nil
	}
	statNode, ok := t.get(quotaStatPath(prefix))
	if !ok {
		return nil
	}
	cur := ParseStatsTrack(statNode.data())
	if checkCount && limit.Get("countHardLimit") > -1 && cur.Get("count")+countDiff > limit.Get("countHardLimit") {
		return wire.ErrQuotaExceeded
	}
	if checkBytes && limit.Get("byteHardLimit") > -1 && cur.Get("bytes")+bytesDiff > limit.Get("byteHardLimit") {
		return wire.ErrQuotaExceeded
	}
	return nil
}
