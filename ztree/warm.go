package ztree

import "zkd/wire"

// AppendWarmPaths appends to dst the paths whose znodes Prep or Apply of
// rec, a write's request body or its txn record, looks up one by one:
// the znode a setData or delete changes, and the parent a create or
// delete changes. Other records add nothing.
func AppendWarmPaths(dst []string, rec wire.Record) []string {
	var path string
	deletes := false
	switch x := rec.(type) {
	case *wire.SetDataRequest: // and SetDataTxn
		return append(dst, x.Path)
	case *wire.PathVersionRequest: // delete
		path, deletes = x.Path, true
	case *wire.PathRequest: // DeleteTxn
		path, deletes = x.Path, true
	case *wire.CreateRequest:
		path = x.Path
	case *wire.CreateTTLRequest:
		path = x.Path
	case *wire.CreateTxn:
		path = x.Path
	case *wire.CreateTTLTxn:
		path = x.Path
	case *wire.CreateContainerTxn:
		path = x.Path
	default:
		return dst
	}
	if deletes {
		dst = append(dst, path)
	}
	parent, _ := splitPath(path)
	return append(dst, parent)
}

// Warm loads into the processor's cache what the applier's next lookups
// of paths will read: each path's slots of the cell cache, the cells in
// them, and the head record of the one of the path's length, which the
// lookup compares the path with. Under a write load those are rarely
// cached (the tree is large, the batch's znodes are scattered, and other
// processes share the cache), and a lookup waits for three misses in a
// row. Here the loads of a stage do not depend on
// each other, so the processor overlaps the misses of a whole stage.
// Warm changes nothing; the result only keeps the loads from being
// optimized away. Only the applier calls it.
func (t *Tree) Warm(paths []string) uint64 {
	if t.cache == nil {
		return 0
	}
	var sum uint64
	var cells [2 * warmStage]*cell
	var klens [warmStage]uint32
	for len(paths) > 0 {
		n := min(len(paths), warmStage)
		for i, p := range paths[:n] {
			cells[2*i], cells[2*i+1] = nil, nil
			if len(p) > 0 && p[0] == '/' {
				k := keyOf(p)
				j := k.cacheSlot()
				cells[2*i], cells[2*i+1] = t.cache[j].cell.Load(), t.cache[j^1].cell.Load()
				klens[i] = k.klen
			}
		}
		// Both slots' cells: which holds the path shows in its length.
		for i, c := range cells[:2*n] {
			if c != nil && c.klen != klens[i/2] {
				cells[i] = nil
			}
		}
		for _, c := range cells[:2*n] {
			if c != nil {
				if r := c.rec.Load(); r != nil {
					sum += uint64(*r)
				}
			}
		}
		paths = paths[n:]
	}
	return sum
}

// warmStage is how many lookups Warm overlaps.
const warmStage = 32
