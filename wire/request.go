package wire

// Request records of module org.apache.zookeeper.proto. A request frame is a
// RequestHeader followed by the record its opcode names (see RequestRecord);
// ping, closeSession and whoAmI have no record.

// RequestHeaderSize is the encoded size of a RequestHeader.
const RequestHeaderSize = 8

// RequestHeader starts every request after the handshake.
type RequestHeader struct {
	Xid  int32
	Type OpCode
}

// Append encodes the RequestHeader.
func (r *RequestHeader) Append(dst []byte) []byte {
	dst = appendInt32(dst, r.Xid)
	return appendInt32(dst, int32(r.Type))
}

func (r *RequestHeader) read(d *decoder) {
	r.Xid = d.int32()
	r.Type = OpCode(d.int32())
}

// CreateRequest is the body of create, create2 and createContainer.
type CreateRequest struct {
	Path  string
	Data  []byte
	ACL   []ACL
	Flags CreateMode
}

// Append encodes the CreateRequest.
func (r *CreateRequest) Append(dst []byte) []byte {
	dst = appendString(dst, r.Path)
	dst = appendBuffer(dst, r.Data)
	dst = appendACLs(dst, r.ACL)
	return appendInt32(dst, int32(r.Flags))
}

func (r *CreateRequest) read(d *decoder) {
	r.Path = d.string()
	r.Data = d.buffer()
	r.ACL = d.acls(r.ACL)
	r.Flags = CreateMode(d.int32())
}

// CreateTTLRequest is the body of createTTL.
type CreateTTLRequest struct {
	Path  string
	Data  []byte
	ACL   []ACL
	Flags CreateMode
	TTL   int64 // milliseconds
}

// Append encodes the CreateTTLRequest.
func (r *CreateTTLRequest) Append(dst []byte) []byte {
	dst = appendString(dst, r.Path)
	dst = appendBuffer(dst, r.Data)
	dst = appendACLs(dst, r.ACL)
	dst = appendInt32(dst, int32(r.Flags))
	return appendInt64(dst, r.TTL)
}

func (r *CreateTTLRequest) read(d *decoder) {
	r.Path = d.string()
	r.Data = d.buffer()
	r.ACL = d.acls(r.ACL)
	r.Flags = CreateMode(d.int32())
	r.TTL = d.int64()
}

// PathVersionRequest is the body of delete and check (CheckVersionRequest):
// a path and an expected version, -1 for any.
type PathVersionRequest struct {
	Path    string
	Version int32
}

// DeleteRequest is the body of delete.
type DeleteRequest = PathVersionRequest

// CheckVersionRequest is the body of check.
type CheckVersionRequest = PathVersionRequest

// Append encodes the request.
func (r *PathVersionRequest) Append(dst []byte) []byte {
	dst = appendString(dst, r.Path)
	return appendInt32(dst, r.Version)
}

func (r *PathVersionRequest) read(d *decoder) {
	r.Path = d.string()
	r.Version = d.int32()
}

// PathWatchRequest is the body of exists, getData, getChildren and
// getChildren2: a path and whether to leave a one-shot watch.
type PathWatchRequest struct {
	Path  string
	Watch bool
}

// ExistsRequest is the body of exists.
type ExistsRequest = PathWatchRequest

// GetDataRequest is the body of getData.
type GetDataRequest = PathWatchRequest

// GetChildrenRequest is the body of getChildren.
type GetChildrenRequest = PathWatchRequest

// GetChildren2Request is the body of getChildren2.
type GetChildren2Request = PathWatchRequest

// Append encodes the request.
func (r *PathWatchRequest) Append(dst []byte) []byte {
	dst = appendString(dst, r.Path)
	return appendBool(dst, r.Watch)
}

func (r *PathWatchRequest) read(d *decoder) {
	r.Path = d.string()
	r.Watch = d.bool()
}

// PathRequest is the body of requests that carry only a path: getACL, sync,
// getAllChildrenNumber and getEphemerals (whose path is a prefix, "/" for
// all). It is also SyncResponse and CreateResponse.
type PathRequest struct {
	Path string
}

// GetACLRequest is the body of getACL.
type GetACLRequest = PathRequest

// SyncRequest is the body of sync.
type SyncRequest = PathRequest

// GetAllChildrenNumberRequest is the body of getAllChildrenNumber.
type GetAllChildrenNumberRequest = PathRequest

// GetEphemeralsRequest is the body of getEphemerals (Path is the prefix).
type GetEphemeralsRequest = PathRequest

// Append encodes the record.
func (r *PathRequest) Append(dst []byte) []byte { return appendString(dst, r.Path) }

func (r *PathRequest) read(d *decoder) { r.Path = d.string() }

// SetDataRequest is the body of setData.
type SetDataRequest struct {
	Path    string
	Data    []byte
	Version int32
}

// Append encodes the SetDataRequest.
func (r *SetDataRequest) Append(dst []byte) []byte {
	dst = appendString(dst, r.Path)
	dst = appendBuffer(dst, r.Data)
	return appendInt32(dst, r.Version)
}

func (r *SetDataRequest) read(d *decoder) {
	r.Path = d.string()
	r.Data = d.buffer()
	r.Version = d.int32()
}

// SetACLRequest is the body of setACL.
type SetACLRequest struct {
	Path    string
	ACL     []ACL
	Version int32
}

// Append encodes the SetACLRequest.
func (r *SetACLRequest) Append(dst []byte) []byte {
	dst = appendString(dst, r.Path)
	dst = appendACLs(dst, r.ACL)
	return appendInt32(dst, r.Version)
}

func (r *SetACLRequest) read(d *decoder) {
	r.Path = d.string()
	r.ACL = d.acls(r.ACL)
	r.Version = d.int32()
}

// ReconfigRequest is the body of reconfig. Clients send null (nil here) for
// the lists they do not change, which differs from an empty list.
type ReconfigRequest struct {
	JoiningServers *string
	LeavingServers *string
	NewMembers     *string
	CurConfigID    int64 // -1 for any
}

// Append encodes the ReconfigRequest.
func (r *ReconfigRequest) Append(dst []byte) []byte {
	dst = appendOptString(dst, r.JoiningServers)
	dst = appendOptString(dst, r.LeavingServers)
	dst = appendOptString(dst, r.NewMembers)
	return appendInt64(dst, r.CurConfigID)
}

func (r *ReconfigRequest) read(d *decoder) {
	r.JoiningServers = d.optString()
	r.LeavingServers = d.optString()
	r.NewMembers = d.optString()
	r.CurConfigID = d.int64()
}

// WatchesRequest is the body of checkWatches and removeWatches.
type WatchesRequest struct {
	Path string
	Type WatcherType
}

// CheckWatchesRequest is the body of checkWatches.
type CheckWatchesRequest = WatchesRequest

// RemoveWatchesRequest is the body of removeWatches.
type RemoveWatchesRequest = WatchesRequest

// Append encodes the request.
func (r *WatchesRequest) Append(dst []byte) []byte {
	dst = appendString(dst, r.Path)
	return appendInt32(dst, int32(r.Type))
}

func (r *WatchesRequest) read(d *decoder) {
	r.Path = d.string()
	r.Type = WatcherType(d.int32())
}

// AddWatchRequest is the body of addWatch.
type AddWatchRequest struct {
	Path string
	Mode AddWatchMode
}

// Append encodes the AddWatchRequest.
func (r *AddWatchRequest) Append(dst []byte) []byte {
	dst = appendString(dst, r.Path)
	return appendInt32(dst, int32(r.Mode))
}

func (r *AddWatchRequest) read(d *decoder) {
	r.Path = d.string()
	r.Mode = AddWatchMode(d.int32())
}

// AuthPacket is the body of auth (sent with xid XidAuth).
type AuthPacket struct {
	Type   int32 // always 0 from real clients
	Scheme string
	Auth   []byte
}

// Append encodes the AuthPacket.
func (r *AuthPacket) Append(dst []byte) []byte {
	dst = appendInt32(dst, r.Type)
	dst = appendString(dst, r.Scheme)
	return appendBuffer(dst, r.Auth)
}

func (r *AuthPacket) read(d *decoder) {
	r.Type = d.int32()
	r.Scheme = d.string()
	r.Auth = d.buffer()
}

// SetWatches is the body of setWatches (xid XidSetWatches): the watches a
// reconnecting client had, to fire at once what changed after RelativeZxid.
type SetWatches struct {
	RelativeZxid int64
	DataWatches  []string
	ExistWatches []string
	ChildWatches []string
}

// Append encodes the SetWatches.
func (r *SetWatches) Append(dst []byte) []byte {
	dst = appendInt64(dst, r.RelativeZxid)
	dst = appendStrings(dst, r.DataWatches)
	dst = appendStrings(dst, r.ExistWatches)
	return appendStrings(dst, r.ChildWatches)
}

func (r *SetWatches) read(d *decoder) {
	r.RelativeZxid = d.int64()
	r.DataWatches = d.strings(r.DataWatches)
	r.ExistWatches = d.strings(r.ExistWatches)
	r.ChildWatches = d.strings(r.ChildWatches)
}

// SetWatches2 is the body of setWatches2: SetWatches plus persistent and
// persistent-recursive watches.
type SetWatches2 struct {
	RelativeZxid               int64
	DataWatches                []string
	ExistWatches               []string
	ChildWatches               []string
	PersistentWatches          []string
	PersistentRecursiveWatches []string
}

// Append encodes the SetWatches2.
func (r *SetWatches2) Append(dst []byte) []byte {
	dst = appendInt64(dst, r.RelativeZxid)
	dst = appendStrings(dst, r.DataWatches)
	dst = appendStrings(dst, r.ExistWatches)
	dst = appendStrings(dst, r.ChildWatches)
	dst = appendStrings(dst, r.PersistentWatches)
	return appendStrings(dst, r.PersistentRecursiveWatches)
}

func (r *SetWatches2) read(d *decoder) {
	r.RelativeZxid = d.int64()
	r.DataWatches = d.strings(r.DataWatches)
	r.ExistWatches = d.strings(r.ExistWatches)
	r.ChildWatches = d.strings(r.ChildWatches)
	r.PersistentWatches = d.strings(r.PersistentWatches)
	r.PersistentRecursiveWatches = d.strings(r.PersistentRecursiveWatches)
}

// SASLToken is GetSASLRequest (the body of sasl) and SetSASLResponse (its
// reply): one opaque token.
type SASLToken struct {
	Token []byte
}

// GetSASLRequest is the body of sasl.
type GetSASLRequest = SASLToken

// SetSASLResponse is the reply to sasl.
type SetSASLResponse = SASLToken

// Append encodes the token record.
func (r *SASLToken) Append(dst []byte) []byte { return appendBuffer(dst, r.Token) }

func (r *SASLToken) read(d *decoder) { r.Token = d.buffer() }

// DeleteContainerRequest is the body of deleteContainer. Clients never send
// it: ZooKeeper's container reaper submits it internally, with the path as
// raw UTF-8 filling the whole body (no length prefix). It is decoded here so
// that a client that does send opcode 20 gets a proper answer.
type DeleteContainerRequest struct {
	Path string
}

// Append encodes the DeleteContainerRequest.
func (r *DeleteContainerRequest) Append(dst []byte) []byte { return append(dst, r.Path...) }

func (r *DeleteContainerRequest) read(d *decoder) {
	r.Path = string(d.bytes(len(d.b) - d.off))
}
