package wire

// Record is implemented by a pointer to every record type of this package.
type Record interface {
	// Append appends the record's encoding to dst.
	Append(dst []byte) []byte
	// Decode reads the record from the start of b (see Mode) and returns
	// the number of bytes used.
	Decode(b []byte, m Mode) (int, error)
}

// RequestRecord returns a new, empty record for the body of a request with
// opcode op. Opcodes whose requests have no body (ping, closeSession, whoAmI)
// give a nil record and true; opcodes unknown to ZooKeeper 3.9 give false.
// The hot path should switch on the opcode and decode into a reused record
// instead: this allocates.
func RequestRecord(op OpCode) (Record, bool) {
	switch op {
	case OpCreate, OpCreate2, OpCreateContainer:
		return new(CreateRequest), true
	case OpCreateTTL:
		return new(CreateTTLRequest), true
	case OpDelete, OpCheck:
		return new(PathVersionRequest), true
	case OpExists, OpGetData, OpGetChildren, OpGetChildren2:
		return new(PathWatchRequest), true
	case OpSetData:
		return new(SetDataRequest), true
	case OpGetACL, OpSync, OpGetAllChildrenNumber, OpGetEphemerals:
		return new(PathRequest), true
	case OpSetACL:
		return new(SetACLRequest), true
	case OpMulti, OpMultiRead:
		return new(MultiRequest), true
	case OpReconfig:
		return new(ReconfigRequest), true
	case OpCheckWatches, OpRemoveWatches:
		return new(WatchesRequest), true
	case OpDeleteContainer:
		return new(DeleteContainerRequest), true
	case OpAuth:
		return new(AuthPacket), true
	case OpSetWatches:
		return new(SetWatches), true
	case OpSetWatches2:
		return new(SetWatches2), true
	case OpSASL:
		return new(SASLToken), true
	case OpAddWatch:
		return new(AddWatchRequest), true
	case OpPing, OpCloseSession, OpWhoAmI:
		return nil, true
	}
	return nil, false
}

// ReplyRecord returns a new, empty record for the body of a successful reply
// to a request with opcode op. Replies with no body give a nil record and
// true; unknown opcodes give false. An error reply (ReplyHeader.Err != 0) has
// no body whatever its opcode.
func ReplyRecord(op OpCode) (Record, bool) {
	switch op {
	case OpCreate, OpSync:
		return new(PathRequest), true
	case OpCreate2, OpCreateContainer, OpCreateTTL:
		return new(Create2Response), true
	case OpExists, OpSetData, OpSetACL:
		return new(StatResponse), true
	case OpGetData, OpReconfig:
		return new(GetDataResponse), true
	case OpGetACL:
		return new(GetACLResponse), true
	case OpGetChildren, OpGetEphemerals:
		return new(StringsResponse), true
	case OpGetChildren2:
		return new(GetChildren2Response), true
	case OpMulti, OpMultiRead:
		return new(MultiResponse), true
	case OpSASL:
		return new(SASLToken), true
	case OpGetAllChildrenNumber:
		return new(GetAllChildrenNumberResponse), true
	case OpWhoAmI:
		return new(WhoAmIResponse), true
	case OpAddWatch:
		// ZooKeeper answers addWatch with an ErrorResponse carrying 0.
		return new(ErrorResponse), true
	case OpDelete, OpCheck, OpPing, OpCheckWatches, OpRemoveWatches, OpDeleteContainer,
		OpAuth, OpSetWatches, OpSetWatches2, OpCloseSession:
		return nil, true
	}
	return nil, false
}

// TxnRecord returns a new, empty record for the txn that follows a TxnHeader
// of type op; unknown types give false.
func TxnRecord(op OpCode) (Record, bool) {
	switch op {
	case OpCreate, OpCreate2:
		return new(CreateTxn), true
	case OpCreateContainer:
		return new(CreateContainerTxn), true
	case OpCreateTTL:
		return new(CreateTTLTxn), true
	case OpDelete, OpDeleteContainer:
		return new(PathRequest), true
	case OpSetData, OpReconfig:
		return new(SetDataRequest), true
	case OpSetACL:
		return new(SetACLRequest), true
	case OpCheck:
		return new(PathVersionRequest), true
	case OpMulti:
		return new(MultiTxn), true
	case OpCreateSession:
		return new(CreateSessionTxn), true
	case OpCloseSession:
		return new(CloseSessionTxn), true
	case OpError:
		return new(ErrorResponse), true
	}
	return nil, false
}

// DecodeRequest decodes a request payload (a frame without its length
// prefix): the header and, for opcodes with one, a new body record whose
// strings are copies. It returns the bytes used; ZooKeeper ignores bytes
// after the record, and so does the caller that wants to match it.
func DecodeRequest(b []byte) (RequestHeader, Record, int, error) {
	h, n, err := DecodeRequestHeader(b)
	if err != nil {
		return h, nil, 0, err
	}
	rec, ok := RequestRecord(h.Type)
	if !ok {
		return h, nil, n, ErrUnknownOpCode
	}
	if rec == nil {
		return h, nil, n, nil
	}
	m, err := rec.Decode(b[n:], Copy)
	if err != nil {
		return h, nil, n, err
	}
	return h, rec, n + m, nil
}

// DecodeReply decodes a reply payload for a request with opcode op: the
// header and, when it carries no error and op has one, a new body record.
// Notifications (xid XidNotification) decode to a WatcherEvent whatever op.
func DecodeReply(b []byte, op OpCode) (ReplyHeader, Record, int, error) {
	h, n, err := DecodeReplyHeader(b)
	if err != nil {
		return h, nil, 0, err
	}
	var rec Record
	switch {
	case h.Xid == XidNotification:
		rec = new(WatcherEvent)
	case h.Err != ErrOK:
		return h, nil, n, nil
	default:
		var ok bool
		if rec, ok = ReplyRecord(op); !ok {
			return h, nil, n, ErrUnknownOpCode
		}
		if rec == nil {
			return h, nil, n, nil
		}
	}
	m, err := rec.Decode(b[n:], Copy)
	if err != nil {
		return h, nil, n, err
	}
	return h, rec, n + m, nil
}
