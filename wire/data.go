package wire

// Records of module org.apache.zookeeper.data.

// Id is an ACL identity: a scheme ("world", "auth", "digest", "ip", "super",
// …) and an id within it.
type Id struct {
	Scheme string
	ID     string
}

// Append encodes the Id.
func (r *Id) Append(dst []byte) []byte {
	dst = appendString(dst, r.Scheme)
	return appendString(dst, r.ID)
}

func (r *Id) read(d *decoder) {
	r.Scheme = d.string()
	r.ID = d.string()
}

func (r *Id) readFrom(d decoder) decoder { r.read(&d); return d }

// ACL grants Perms to the identity ID.
type ACL struct {
	Perms Perm
	ID    Id
}

// Append encodes the ACL.
func (r *ACL) Append(dst []byte) []byte {
	dst = appendInt32(dst, int32(r.Perms))
	return r.ID.Append(dst)
}

func (r *ACL) read(d *decoder) {
	r.Perms = Perm(d.int32())
	r.ID.read(d)
}

// minACLSize is the smallest encoding of an ACL: perms and two empty strings.
const minACLSize = 12

func appendACLs(dst []byte, v []ACL) []byte { return appendRecords(dst, v) }

// acls reads a vector<ACL>, reusing dst's capacity in Alias mode. It is
// readRecords written out: create requests carry ACLs on the hot path, and
// the generic version's indirect calls made decoding a create 50% slower.
func (d *decoder) acls(dst []ACL) []ACL {
	n, null := d.length(minACLSize)
	if d.err != nil || null {
		return nil
	}
	if d.mode == Alias && dst != nil && cap(dst) >= n {
		dst = dst[:n]
	} else {
		dst = make([]ACL, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		dst[i].read(d)
	}
	return dst
}

func appendIds(dst []byte, v []Id) []byte { return appendRecords(dst, v) }

// ids reads a vector<Id>; an Id takes at least two empty strings.
func (d *decoder) ids(dst []Id) []Id { return readRecords(d, dst, 8) }

// StatSize is the encoded size of a Stat.
const StatSize = 68

// Stat is the znode metadata a client sees.
type Stat struct {
	Czxid          int64 // zxid of the create
	Mzxid          int64 // zxid of the last data change
	Ctime          int64 // create time, ms since the epoch
	Mtime          int64 // last data change time, ms since the epoch
	Version        int32 // data version
	Cversion       int32 // child version
	Aversion       int32 // ACL version
	EphemeralOwner int64 // owning session id, 0 if persistent
	DataLength     int32
	NumChildren    int32
	Pzxid          int64 // zxid of the last child create or delete
}

// Append encodes the Stat.
func (r *Stat) Append(dst []byte) []byte {
	dst = appendInt64(dst, r.Czxid)
	dst = appendInt64(dst, r.Mzxid)
	dst = appendInt64(dst, r.Ctime)
	dst = appendInt64(dst, r.Mtime)
	dst = appendInt32(dst, r.Version)
	dst = appendInt32(dst, r.Cversion)
	dst = appendInt32(dst, r.Aversion)
	dst = appendInt64(dst, r.EphemeralOwner)
	dst = appendInt32(dst, r.DataLength)
	dst = appendInt32(dst, r.NumChildren)
	return appendInt64(dst, r.Pzxid)
}

func (r *Stat) read(d *decoder) {
	if !d.need(StatSize) {
		return
	}
	r.Czxid = d.int64()
	r.Mzxid = d.int64()
	r.Ctime = d.int64()
	r.Mtime = d.int64()
	r.Version = d.int32()
	r.Cversion = d.int32()
	r.Aversion = d.int32()
	r.EphemeralOwner = d.int64()
	r.DataLength = d.int32()
	r.NumChildren = d.int32()
	r.Pzxid = d.int64()
}

// StatPersisted is the znode metadata as snapshots store it (no dataLength
// or numChildren: those are derived).
type StatPersisted struct {
	Czxid          int64
	Mzxid          int64
	Ctime          int64
	Mtime          int64
	Version        int32
	Cversion       int32
	Aversion       int32
	EphemeralOwner int64
	Pzxid          int64
}

// Append encodes the StatPersisted.
func (r *StatPersisted) Append(dst []byte) []byte {
	dst = appendInt64(dst, r.Czxid)
	dst = appendInt64(dst, r.Mzxid)
	dst = appendInt64(dst, r.Ctime)
	dst = appendInt64(dst, r.Mtime)
	dst = appendInt32(dst, r.Version)
	dst = appendInt32(dst, r.Cversion)
	dst = appendInt32(dst, r.Aversion)
	dst = appendInt64(dst, r.EphemeralOwner)
	return appendInt64(dst, r.Pzxid)
}

func (r *StatPersisted) read(d *decoder) {
	r.Czxid = d.int64()
	r.Mzxid = d.int64()
	r.Ctime = d.int64()
	r.Mtime = d.int64()
	r.Version = d.int32()
	r.Cversion = d.int32()
	r.Aversion = d.int32()
	r.EphemeralOwner = d.int64()
	r.Pzxid = d.int64()
}

// ClientInfo is one identity of a session, as whoAmI reports it.
type ClientInfo struct {
	AuthScheme string
	User       string
}

// Append encodes the ClientInfo.
func (r *ClientInfo) Append(dst []byte) []byte {
	dst = appendString(dst, r.AuthScheme)
	return appendString(dst, r.User)
}

func (r *ClientInfo) read(d *decoder) {
	r.AuthScheme = d.string()
	r.User = d.string()
}

func (r *ClientInfo) readFrom(d decoder) decoder { r.read(&d); return d }
