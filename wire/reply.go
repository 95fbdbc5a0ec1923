package wire

// Reply records. A reply frame is a ReplyHeader followed, when Err is OK, by
// the record its request's opcode names (see ReplyRecord). An error reply is
// the header alone. Watch events arrive as ReplyHeader{Xid: XidNotification}
// followed by a WatcherEvent.

// ReplyHeaderSize is the encoded size of a ReplyHeader.
const ReplyHeaderSize = 16

// ReplyHeader starts every reply after the handshake.
type ReplyHeader struct {
	Xid  int32
	Zxid int64
	Err  ErrCode
}

// Append encodes the ReplyHeader.
func (r *ReplyHeader) Append(dst []byte) []byte {
	return AppendReplyHeader(dst, r.Xid, r.Zxid, r.Err)
}

func (r *ReplyHeader) read(d *decoder) {
	r.Xid = d.int32()
	r.Zxid = d.int64()
	r.Err = ErrCode(d.int32())
}

// AppendReplyHeader encodes a ReplyHeader from its fields, for the hot path
// that does not build the struct.
func AppendReplyHeader(dst []byte, xid int32, zxid int64, err ErrCode) []byte {
	dst = appendInt32(dst, xid)
	dst = appendInt64(dst, zxid)
	return appendInt32(dst, int32(err))
}

// CreateResponse is the reply to create: the path actually created (with
// its sequence suffix, if any).
type CreateResponse = PathRequest

// SyncResponse is the reply to sync.
type SyncResponse = PathRequest

// Create2Response is the reply to create2, createContainer and createTTL.
type Create2Response struct {
	Path string
	Stat Stat
}

// Append encodes the Create2Response.
func (r *Create2Response) Append(dst []byte) []byte {
	dst = appendString(dst, r.Path)
	return r.Stat.Append(dst)
}

func (r *Create2Response) read(d *decoder) {
	r.Path = d.string()
	r.Stat.read(d)
}

// StatResponse is the reply to exists, setData and setACL: a Stat alone.
type StatResponse struct {
	Stat Stat
}

// ExistsResponse is the reply to exists.
type ExistsResponse = StatResponse

// SetDataResponse is the reply to setData.
type SetDataResponse = StatResponse

// SetACLResponse is the reply to setACL.
type SetACLResponse = StatResponse

// Append encodes the record.
func (r *StatResponse) Append(dst []byte) []byte { return r.Stat.Append(dst) }

func (r *StatResponse) read(d *decoder) { r.Stat.read(d) }

// GetDataResponse is the reply to getData (and to reconfig, with the new
// configuration as data).
type GetDataResponse struct {
	Data []byte
	Stat Stat
}

// Append encodes the GetDataResponse.
func (r *GetDataResponse) Append(dst []byte) []byte {
	dst = appendBuffer(dst, r.Data)
	return r.Stat.Append(dst)
}

func (r *GetDataResponse) read(d *decoder) {
	r.Data = d.buffer()
	r.Stat.read(d)
}

// GetACLResponse is the reply to getACL.
type GetACLResponse struct {
	ACL  []ACL
	Stat Stat
}

// Append encodes the GetACLResponse.
func (r *GetACLResponse) Append(dst []byte) []byte {
	dst = appendACLs(dst, r.ACL)
	return r.Stat.Append(dst)
}

func (r *GetACLResponse) read(d *decoder) {
	r.ACL = d.acls(r.ACL)
	r.Stat.read(d)
}

// StringsResponse is the reply to getChildren (GetChildrenResponse) and
// getEphemerals (GetEphemeralsResponse): a list of names or paths.
type StringsResponse struct {
	Strings []string
}

// GetChildrenResponse is the reply to getChildren.
type GetChildrenResponse = StringsResponse

// GetEphemeralsResponse is the reply to getEphemerals.
type GetEphemeralsResponse = StringsResponse

// Append encodes the record.
func (r *StringsResponse) Append(dst []byte) []byte { return appendStrings(dst, r.Strings) }

func (r *StringsResponse) read(d *decoder) { r.Strings = d.strings(r.Strings) }

// GetChildren2Response is the reply to getChildren2.
type GetChildren2Response struct {
	Children []string
	Stat     Stat
}

// Append encodes the GetChildren2Response.
func (r *GetChildren2Response) Append(dst []byte) []byte {
	dst = appendStrings(dst, r.Children)
	return r.Stat.Append(dst)
}

func (r *GetChildren2Response) read(d *decoder) {
	r.Children = d.strings(r.Children)
	r.Stat.read(d)
}

// GetAllChildrenNumberResponse is the reply to getAllChildrenNumber.
type GetAllChildrenNumberResponse struct {
	TotalNumber int32
}

// Append encodes the GetAllChildrenNumberResponse.
func (r *GetAllChildrenNumberResponse) Append(dst []byte) []byte {
	return appendInt32(dst, r.TotalNumber)
}

func (r *GetAllChildrenNumberResponse) read(d *decoder) { r.TotalNumber = d.int32() }

// ErrorResponse is an error result inside a multi reply.
type ErrorResponse struct {
	Err ErrCode
}

// Append encodes the ErrorResponse.
func (r *ErrorResponse) Append(dst []byte) []byte { return appendInt32(dst, int32(r.Err)) }

func (r *ErrorResponse) read(d *decoder) { r.Err = ErrCode(d.int32()) }

// WhoAmIResponse is the reply to whoAmI: the session's identities.
type WhoAmIResponse struct {
	ClientInfo []ClientInfo
}

// Append encodes the WhoAmIResponse.
func (r *WhoAmIResponse) Append(dst []byte) []byte { return appendRecords(dst, r.ClientInfo) }

func (r *WhoAmIResponse) read(d *decoder) { r.ClientInfo = readRecords(d, r.ClientInfo, 8) }

// WatcherEvent is the body of a watch notification (xid XidNotification).
type WatcherEvent struct {
	Type  EventType
	State KeeperState
	Path  string
}

// Append encodes the WatcherEvent.
func (r *WatcherEvent) Append(dst []byte) []byte {
	dst = appendInt32(dst, int32(r.Type))
	dst = appendInt32(dst, int32(r.State))
	return appendString(dst, r.Path)
}

func (r *WatcherEvent) read(d *decoder) {
	r.Type = EventType(d.int32())
	r.State = KeeperState(d.int32())
	r.Path = d.string()
}
