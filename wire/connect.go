package wire

// The handshake: the first frame a client sends is a ConnectRequest with no
// RequestHeader; the server answers with a ConnectResponse with no
// ReplyHeader. Both may end with a readOnly byte: a 44-byte request (sent by
// go-zookeeper, for one) has none, a 45-byte request has it, and ZooKeeper
// answers in kind (36 or 37 bytes). HasReadOnly records which form was read
// so that re-encoding reproduces the same bytes.

// ConnectRequest opens or resumes a session.
type ConnectRequest struct {
	ProtocolVersion int32
	LastZxidSeen    int64
	TimeOut         int32 // requested session timeout, ms
	SessionID       int64 // 0 for a new session
	Passwd          []byte
	ReadOnly        bool // the client accepts a read-only server
	HasReadOnly     bool // the readOnly byte is present
}

// Append encodes the ConnectRequest.
func (r *ConnectRequest) Append(dst []byte) []byte {
	dst = appendInt32(dst, r.ProtocolVersion)
	dst = appendInt64(dst, r.LastZxidSeen)
	dst = appendInt32(dst, r.TimeOut)
	dst = appendInt64(dst, r.SessionID)
	dst = appendBuffer(dst, r.Passwd)
	if r.HasReadOnly {
		dst = appendBool(dst, r.ReadOnly)
	}
	return dst
}

func (r *ConnectRequest) read(d *decoder) {
	r.ProtocolVersion = d.int32()
	r.LastZxidSeen = d.int64()
	r.TimeOut = d.int32()
	r.SessionID = d.int64()
	r.Passwd = d.buffer()
	r.HasReadOnly = d.err == nil && d.off < len(d.b)
	r.ReadOnly = r.HasReadOnly && d.bool()
}

// ConnectResponse accepts (SessionID != 0) or refuses (TimeOut 0, SessionID
// 0) a session.
type ConnectResponse struct {
	ProtocolVersion int32
	TimeOut         int32 // negotiated session timeout, ms
	SessionID       int64
	Passwd          []byte
	ReadOnly        bool // the server is read-only
	HasReadOnly     bool // the readOnly byte is present
}

// Append encodes the ConnectResponse.
func (r *ConnectResponse) Append(dst []byte) []byte {
	dst = appendInt32(dst, r.ProtocolVersion)
	dst = appendInt32(dst, r.TimeOut)
	dst = appendInt64(dst, r.SessionID)
	dst = appendBuffer(dst, r.Passwd)
	if r.HasReadOnly {
		dst = appendBool(dst, r.ReadOnly)
	}
	return dst
}

func (r *ConnectResponse) read(d *decoder) {
	r.ProtocolVersion = d.int32()
	r.TimeOut = d.int32()
	r.SessionID = d.int64()
	r.Passwd = d.buffer()
	r.HasReadOnly = d.err == nil && d.off < len(d.b)
	r.ReadOnly = r.HasReadOnly && d.bool()
}
