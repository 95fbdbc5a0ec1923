// Package java reproduces what ZooKeeper's answers inherit from Java:
// the iteration order of its hash maps and sets, Double.toString,
// Date.toString and String.hashCode, so that zkd's four-letter words,
// AdminServer answers and data-directory dumps come out as ZooKeeper's do.
package java

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// RoundHalfUp4 rounds v to four decimals, halves up, as ZooKeeper rounds
// its average latency (BigDecimal.setScale(4, HALF_UP) of the double's
// exact value).
func RoundHalfUp4(v float64) float64 {
	exact := strconv.FormatFloat(v, 'f', 1074, 64) // every digit of the double
	dot := strings.IndexByte(exact, '.')
	kept := exact[:dot+5]
	r, _ := strconv.ParseFloat(kept, 64)
	if exact[dot+5] >= '5' {
		r, _ = strconv.ParseFloat(strconv.FormatFloat(r+0.0001, 'f', 4, 64), 64)
	}
	return r
}

// Double formats v as Java's Double.toString does: the shortest
// digits that give v back, at least one after the point, and the
// computerized scientific form outside [1e-3, 1e7).
func Double(v float64) string {
	if v == 0 {
		return "0.0"
	}
	if a := math.Abs(v); a >= 1e-3 && a < 1e7 {
		s := strconv.FormatFloat(v, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(v, 'E', -1, 64) // 5E-04
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}

// Date formats t as Java's Date.toString does, in t's location (a
// JVM's default time zone for a time.UnixMilli time).
func Date(t time.Time) string { return t.Format("Mon Jan 02 15:04:05 MST 2006") }

// Order sorts keys as a Java HashMap or HashSet with a table of size
// table iterates them: by bucket (the hash, spread, masked), and within a
// bucket in insertion order, which order gives.
func Order[K int64 | string](keys []K, hash func(K) int32, order map[K]uint64, table int) []K {
	bucket := func(k K) int32 {
		h := hash(k)
		return (h ^ int32(uint32(h)>>16)) & int32(table-1)
	}
	slices.SortFunc(keys, func(a, b K) int {
		if c := cmp.Compare(bucket(a), bucket(b)); c != 0 {
			return c
		}
		return cmp.Compare(order[a], order[b])
	})
	return keys
}

// LongHash is Long.hashCode.
func LongHash(v int64) int32 { return int32(v ^ int64(uint64(v)>>32)) }

// GrownCap is the table size of a Java HashMap that started at start
// buckets after n puts: it doubles whenever it holds more than 3/4.
func GrownCap(n, start int) int {
	c := start
	for n > c*3/4 {
		c *= 2
	}
	return c
}

// TableSizeFor is HashMap.TableSizeFor: the power of two at or above n.
func TableSizeFor(n int) int {
	c := 1
	for c < n {
		c <<= 1
	}
	return c
}

// StringHash is Java's String.hashCode over the UTF-16 code units.
func StringHash(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return h
}

// JSONQuote escapes s for inside a JSON string as Jackson does: quotes
// and backslashes, the control characters with a short escape where JSON
// has one and \u00XX otherwise.
func JSONQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
