package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"zkd/wal"
	"zkd/wire"
)

const txnlogUsage = `usage: zkd txnlog dump FILE   every txn of a txn log file, as ZooKeeper's TxnLogToolkit prints them
FILE is a txn log of ZooKeeper's or zkd's (log.<zxid>). Each entry's checksum is verified: a
wrong one is shown as TxnLogToolkit shows it ("CRC ERROR - ...") and zkd exits with 1.
`

// txnlogCmd is zkd txnlog: it prints a txn log file as ZooKeeper's
// TxnLogToolkit does, line for line given the same time zone. Exit codes:
// 0 printed and every checksum right, 1 a checksum wrong or the file
// unreadable or damaged, 2 wrong arguments.
func txnlogCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, txnlogUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "dump" && len(args) == 2 && (args[1] == "-h" || args[1] == "-help" || args[1] == "--help") {
		fmt.Fprint(stdout, txnlogUsage)
		return 0
	}
	if args[0] != "dump" || len(args) != 2 {
		fmt.Fprintf(stderr, "zkd txnlog: wrong arguments %q\n%s", strings.Join(args, " "), txnlogUsage)
		return 2
	}
	file := args[1]
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintf(stderr, "zkd txnlog: %v\n", err)
		return 1
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	w := bufio.NewWriterSize(stdout, 1<<16)
	bad, err := dumpTxnLog(bufio.NewReaderSize(f, 1<<16), filepath.Base(file), size, w, progressTo(stderr, "reading "+filepath.Base(file)))
	if ferr := w.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("writing: %w", ferr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "zkd txnlog: %s: %v\n", file, err)
		return 1
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "zkd txnlog: %s: %d txns with a wrong checksum\n", file, bad)
		return 1
	}
	return 0
}

// dumpTxnLog prints the log r holds and returns how many entries had a
// wrong checksum.
func dumpTxnLog(r *bufio.Reader, name string, size int64, w *bufio.Writer, progress func(read, size int64)) (int, error) {
	var hb [16]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return 0, fmt.Errorf("no file header: %w", err)
	}
	var h wire.FileHeader
	if _, err := h.Decode(hb[:], wire.Copy); err != nil || h.Magic != 0x5a4b4c47 {
		return 0, fmt.Errorf("invalid magic number for %s", name)
	}
	fmt.Fprintf(w, "ZooKeeper Transactional Log File with dbid %d txnlog format version %d\n", h.DBID, h.Version)
	count, bad := 0, 0
	read := int64(len(hb))
	var head [12]byte
	for {
		if progress != nil && read>>22 != (read-int64(len(head)))>>22 {
			progress(read, size)
		}
		if _, err := io.ReadFull(r, head[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return bad, err
		}
		crc := binary.BigEndian.Uint64(head[:8])
		n := int32(binary.BigEndian.Uint32(head[8:]))
		if n == 0 {
			break // preallocated zeros: the end, as ZooKeeper defines it
		}
		if n < 0 || n > 1<<30 {
			return bad, fmt.Errorf("entry %d claims %d bytes: the file is damaged there", count+1, n)
		}
		entry := make([]byte, n)
		if _, err := io.ReadFull(r, entry); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return bad, err
		}
		read += int64(len(head)) + int64(n) + 1
		line, err := txnLine(entry)
		if err != nil {
			return bad, fmt.Errorf("entry %d: %v", count+1, err)
		}
		if uint64(adler32.Checksum(entry)) != crc {
			bad++
			w.WriteString("CRC ERROR - " + line)
		}
		w.WriteString(line)
		if b, err := r.ReadByte(); err != nil || b != 'B' {
			return bad, errors.New("the last transaction was partial")
		}
		count++
	}
	if progress != nil {
		progress(size, size)
	}
	fmt.Fprintf(w, "EOF reached after %d txns.\n", count)
	return bad, nil
}

// txnLine is one txn as TxnLogToolkit prints it, its line end included.
func txnLine(entry []byte) (string, error) {
	txn, err := wal.DecodeTxn(entry)
	if err != nil {
		return "", err
	}
	h := txn.Header
	s := fmt.Sprintf("%s session 0x%x cxid 0x%x zxid 0x%x %s %s",
		time.UnixMilli(h.Time).In(dumpZone).Format("1/2/06, 3:04:05 PM MST"),
		uint64(h.ClientID), uint64(int64(h.Cxid)), uint64(h.Zxid), op2String(h.Type), txnString(txn.Record))
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s, nil
}

// op2String is ZooKeeper's Request.op2String.
func op2String(op wire.OpCode) string {
	switch op {
	case wire.OpCreateTTL:
		return "createTtl"
	case wire.OpAddWatch:
		return "unknown " + strconv.Itoa(int(op))
	}
	if s := op.String(); !strings.HasPrefix(s, "OpCode(") {
		return s
	}
	return "unknown " + strconv.Itoa(int(op))
}

// txnString is how TxnLogToolkit shows a txn's record: its own format for
// creates, setData and multi, and jute's CSV form (toString) for the rest.
func txnString(rec wire.Record) string {
	switch r := rec.(type) {
	case nil:
		return ""
	case *wire.CreateTxn:
		return fmt.Sprintf("%s,%s,%s,%t,%d", r.Path, javaUTF8(r.Data), aclList(r.ACL), r.Ephemeral, r.ParentCVersion)
	case *wire.SetDataRequest:
		return fmt.Sprintf("%s,%s,%d", r.Path, javaUTF8(r.Data), r.Version)
	case *wire.CreateContainerTxn:
		return fmt.Sprintf("%s,%s,%s,%d", r.Path, javaUTF8(r.Data), aclList(r.ACL), r.ParentCVersion)
	case *wire.CreateTTLTxn:
		return fmt.Sprintf("%s,%s,%s,%d,%d", r.Path, javaUTF8(r.Data), aclList(r.ACL), r.ParentCVersion, r.TTL)
	case *wire.MultiTxn:
		var b strings.Builder
		for i, t := range r.Txns {
			if i > 0 {
				b.WriteString(";")
			}
			b.WriteString(op2String(t.Type) + ":" + javaUTF8(t.Data))
		}
		return b.String()
	case *wire.PathRequest:
		return csvString(r.Path) + "\n"
	case *wire.PathVersionRequest:
		return csvString(r.Path) + "," + strconv.Itoa(int(r.Version)) + "\n"
	case *wire.SetACLRequest:
		return csvString(r.Path) + "," + csvACLs(r.ACL) + "," + strconv.Itoa(int(r.Version)) + "\n"
	case *wire.CreateSessionTxn:
		return strconv.Itoa(int(r.TimeOut)) + "\n"
	case *wire.CloseSessionTxn:
		parts := make([]string, len(r.Paths2Delete))
		for i, p := range r.Paths2Delete {
			parts[i] = csvString(p)
		}
		return "v{" + strings.Join(parts, ",") + "}\n"
	case *wire.ErrorResponse:
		return strconv.Itoa(int(r.Err)) + "\n"
	}
	return fmt.Sprint(rec)
}

// aclList is a Java List<ACL>'s toString: each ACL in jute's CSV form,
// which ends in a newline.
func aclList(acls []wire.ACL) string {
	parts := make([]string, len(acls))
	for i, a := range acls {
		parts[i] = fmt.Sprintf("%d,s{%s,%s}\n", int32(a.Perms), csvString(a.ID.Scheme), csvString(a.ID.ID))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// csvACLs is a vector of ACLs as jute's CSV archive writes it.
func csvACLs(acls []wire.ACL) string {
	parts := make([]string, len(acls))
	for i, a := range acls {
		parts[i] = fmt.Sprintf("s{%d,s{%s,%s}}", int32(a.Perms), csvString(a.ID.Scheme), csvString(a.ID.ID))
	}
	return "v{" + strings.Join(parts, ",") + "}"
}

// csvString is jute's CSV form of a string: a quote, then the string with
// NUL, newlines, commas, braces and percent signs escaped.
func csvString(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case 0:
			b.WriteString("%00")
		case '\n':
			b.WriteString("%0A")
		case '\r':
			b.WriteString("%0D")
		case ',':
			b.WriteString("%2C")
		case '}':
			b.WriteString("%7D")
		case '%':
			b.WriteString("%25")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// javaUTF8 is new String(b, UTF_8): each maximal ill-formed subsequence
// becomes one U+FFFD, as Java's decoder replaces it.
func javaUTF8(b []byte) string {
	var out strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r != utf8.RuneError || n > 1 {
			out.Write(b[:n])
			b = b[n:]
			continue
		}
		out.WriteRune(utf8.RuneError)
		b = b[illFormedPrefix(b):]
	}
	return out.String()
}

// illFormedPrefix is the length of the maximal subpart of an ill-formed
// sequence at the start of b: a lead byte and the continuation bytes that
// could still have completed it, or one byte.
func illFormedPrefix(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	i := 1
	for ; i <= need && i < len(b); i++ {
		if b[i] < lo || b[i] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
	}
	return i
}
