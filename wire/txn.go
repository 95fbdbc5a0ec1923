package wire

// Txn records (module org.apache.zookeeper.txn), laid out as Apache
// ZooKeeper writes them into version-2/log.* files and into PROPOSAL packets:
// a TxnHeader, then the record its Type names (see TxnRecord), then, where
// digests are enabled, a TxnDigest.

// TxnHeader precedes every txn.
type TxnHeader struct {
	ClientID int64 // session id
	Cxid     int32 // the client's xid
	Zxid     int64
	Time     int64 // ms since the epoch, fixed by the leader
	Type     OpCode
}

// TxnHeaderSize is the encoded size of a TxnHeader.
const TxnHeaderSize = 28

// Append encodes the TxnHeader.
func (r *TxnHeader) Append(dst []byte) []byte {
	dst = appendInt64(dst, r.ClientID)
	dst = appendInt32(dst, r.Cxid)
	dst = appendInt64(dst, r.Zxid)
	dst = appendInt64(dst, r.Time)
	return appendInt32(dst, int32(r.Type))
}

func (r *TxnHeader) read(d *decoder) {
	r.ClientID = d.int64()
	r.Cxid = d.int32()
	r.Zxid = d.int64()
	r.Time = d.int64()
	r.Type = OpCode(d.int32())
}

// CreateTxn is the txn of create and create2.
type CreateTxn struct {
	Path           string
	Data           []byte
	ACL            []ACL
	Ephemeral      bool
	ParentCVersion int32 // the parent's cversion after this create
}

// Append encodes the CreateTxn.
func (r *CreateTxn) Append(dst []byte) []byte {
	dst = appendString(dst, r.Path)
	dst = appendBuffer(dst, r.Data)
	dst = appendACLs(dst, r.ACL)
	dst = appendBool(dst, r.Ephemeral)
	return appendInt32(dst, r.ParentCVersion)
}

func (r *CreateTxn) read(d *decoder) {
	r.Path = d.string()
	r.Data = d.buffer()
	r.ACL = d.acls(r.ACL)
	r.Ephemeral = d.bool()
	r.ParentCVersion = d.int32()
}

// CreateContainerTxn is the txn of createContainer.
type CreateContainerTxn struct {
	Path           string
	Data           []byte
	ACL            []ACL
	ParentCVersion int32
}

// Append encodes the CreateContainerTxn.
func (r *CreateContainerTxn) Append(dst []byte) []byte {
	dst = appendString(dst, r.Path)
	dst = appendBuffer(dst, r.Data)
	dst = appendACLs(dst, r.ACL)
	return appendInt32(dst, r.ParentCVersion)
}

func (r *CreateContainerTxn) read(d *decoder) {
	r.Path = d.string()
	r.Data = d.buffer()
	r.ACL = d.acls(r.ACL)
	r.ParentCVersion = d.int32()
}

// CreateTTLTxn is the txn of createTTL.
type CreateTTLTxn struct {
	Path           string
	Data           []byte
	ACL            []ACL
	ParentCVersion int32
	TTL            int64
}

// Append encodes the CreateTTLTxn.
func (r *CreateTTLTxn) Append(dst []byte) []byte {
	dst = appendString(dst, r.Path)
	dst = appendBuffer(dst, r.Data)
	dst = appendACLs(dst, r.ACL)
	dst = appendInt32(dst, r.ParentCVersion)
	return appendInt64(dst, r.TTL)
}

func (r *CreateTTLTxn) read(d *decoder) {
	r.Path = d.string()
	r.Data = d.buffer()
	r.ACL = d.acls(r.ACL)
	r.ParentCVersion = d.int32()
	r.TTL = d.int64()
}

// DeleteTxn is the txn of delete and deleteContainer.
type DeleteTxn = PathRequest

// SetDataTxn is the txn of setData; Version is the new version.
type SetDataTxn = SetDataRequest

// CheckVersionTxn is the txn of check inside a multi.
type CheckVersionTxn = PathVersionRequest

// SetACLTxn is the txn of setACL; Version is the new aversion.
type SetACLTxn = SetACLRequest

// ErrorTxn is the txn of a request that failed in prep (inside a multi, or
// standalone where ZooKeeper logs one).
type ErrorTxn = ErrorResponse

// CreateSessionTxn is the txn of a new session.
type CreateSessionTxn struct {
	TimeOut int32
}

// Append encodes the CreateSessionTxn.
func (r *CreateSessionTxn) Append(dst []byte) []byte { return appendInt32(dst, r.TimeOut) }

func (r *CreateSessionTxn) read(d *decoder) { r.TimeOut = d.int32() }

// CloseSessionTxn is the txn of closeSession and of session expiry: the
// ephemerals to delete.
type CloseSessionTxn struct {
	Paths2Delete []string
}

// Append encodes the CloseSessionTxn.
func (r *CloseSessionTxn) Append(dst []byte) []byte { return appendStrings(dst, r.Paths2Delete) }

func (r *CloseSessionTxn) read(d *decoder) { r.Paths2Delete = d.strings(r.Paths2Delete) }

// Txn is one sub-txn of a MultiTxn: its type and its encoded record.
type Txn struct {
	Type OpCode
	Data []byte
}

// Append encodes the Txn.
func (r *Txn) Append(dst []byte) []byte {
	dst = appendInt32(dst, int32(r.Type))
	return appendBuffer(dst, r.Data)
}

func (r *Txn) read(d *decoder) {
	r.Type = OpCode(d.int32())
	r.Data = d.buffer()
}

func (r *Txn) readFrom(d decoder) decoder { r.read(&d); return d }

// MultiTxn is the txn of multi.
type MultiTxn struct {
	Txns []Txn
}

// Append encodes the MultiTxn.
func (r *MultiTxn) Append(dst []byte) []byte { return appendRecords(dst, r.Txns) }

// read decodes the sub-txns; each takes at least a type and a length.
func (r *MultiTxn) read(d *decoder) { r.Txns = readRecords(d, r.Txns, 8) }

// TxnDigest follows a txn when digests are enabled: the data-tree digest
// after applying it.
type TxnDigest struct {
	Version    int32
	TreeDigest int64
}

// Append encodes the TxnDigest.
func (r *TxnDigest) Append(dst []byte) []byte {
	dst = appendInt32(dst, r.Version)
	return appendInt64(dst, r.TreeDigest)
}

func (r *TxnDigest) read(d *decoder) {
	r.Version = d.int32()
	r.TreeDigest = d.int64()
}

// FileHeader starts every log and snapshot file.
type FileHeader struct {
	Magic   int32 // "ZKLG" for logs, "ZKSN" for snapshots
	Version int32 // 2
	DBID    int64
}

// Append encodes the FileHeader.
func (r *FileHeader) Append(dst []byte) []byte {
	dst = appendInt32(dst, r.Magic)
	dst = appendInt32(dst, r.Version)
	return appendInt64(dst, r.DBID)
}

func (r *FileHeader) read(d *decoder) {
	r.Magic = d.int32()
	r.Version = d.int32()
	r.DBID = d.int64()
}

// QuorumPacket is the frame body exchanged between ensemble members.
type QuorumPacket struct {
	Type     int32
	Zxid     int64
	Data     []byte
	AuthInfo []Id
}

// Append encodes the QuorumPacket.
func (r *QuorumPacket) Append(dst []byte) []byte {
	dst = appendInt32(dst, r.Type)
	dst = appendInt64(dst, r.Zxid)
	dst = appendBuffer(dst, r.Data)
	return appendIds(dst, r.AuthInfo)
}

func (r *QuorumPacket) read(d *decoder) {
	r.Type = d.int32()
	r.Zxid = d.int64()
	r.Data = d.buffer()
	r.AuthInfo = d.ids(r.AuthInfo)
}

// LearnerInfo is what a follower or observer tells its leader first.
type LearnerInfo struct {
	ServerID        int64
	ProtocolVersion int32
	ConfigVersion   int64
}

// Append encodes the LearnerInfo.
func (r *LearnerInfo) Append(dst []byte) []byte {
	dst = appendInt64(dst, r.ServerID)
	dst = appendInt32(dst, r.ProtocolVersion)
	return appendInt64(dst, r.ConfigVersion)
}

func (r *LearnerInfo) read(d *decoder) {
	r.ServerID = d.int64()
	r.ProtocolVersion = d.int32()
	r.ConfigVersion = d.int64()
}
