package ztree

// Warm loads into the processor's cache what the applier's next lookups
// of paths will read: each path's slot of the cell cache, its cell, and
// the head record the lookup compares the path with. Under a write load
// those are rarely cached (the tree is large, the batch's znodes are
// scattered, and other processes share the cache), and a lookup waits
// for three misses in a row. Here the loads of a stage do not depend on
// each other, so the processor overlaps the misses of a whole stage.
// Warm changes nothing; the result only keeps the loads from being
// optimized away. Only the applier calls it.
func (t *Tree) Warm(paths []string) uint64 {
	if t.cache == nil {
		return 0
	}
	var sum uint64
	var cells [warmStage]*cell
	for len(paths) > 0 {
		n := min(len(paths), warmStage)
		for i, p := range paths[:n] {
			cells[i] = nil
			if len(p) > 0 && p[0] == '/' {
				cells[i] = t.cache[keyOf(p).cacheSlot()].cell.Load()
			}
		}
		for _, c := range cells[:n] {
			if c != nil {
				sum += uint64(c.klen)
			}
		}
		for _, c := range cells[:n] {
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
