package wire

// multi and multiRead. A request is a list of (MultiHeader, op record) pairs
// ended by the terminator header {Type: -1, Done: true, Err: -1}. A reply is
// a list of (MultiHeader, result record) pairs ended by the same terminator.
//
// Reply shapes, as ZooKeeper sends them:
//   - multi that succeeded: one result per op, header {result type, false,
//     0}. Create results follow ZooKeeper 3.8's quirk: a create or create2
//     op gets type create with a CreateResponse (path only), a
//     createContainer or createTTL op gets type create2 with a
//     Create2Response (path and stat). setData gets a SetDataResponse,
//     delete and check nothing. The ReplyHeader's err is 0.
//   - multi that failed: every result is an error result, header
//     {-1, false, code} followed by ErrorResponse{code}; ops before the
//     failing one carry 0 (rolled back), the failing op its own code, ops
//     after it RUNTIMEINCONSISTENCY. The ReplyHeader's err is still 0.
//   - multiRead: independent results, getData a GetDataResponse,
//     getChildren a GetChildrenResponse, a failed op an error result.

// MultiHeader precedes every op and result of a multi.
type MultiHeader struct {
	Type OpCode
	Done bool
	Err  ErrCode
}

// Append encodes the MultiHeader.
func (r *MultiHeader) Append(dst []byte) []byte {
	dst = appendInt32(dst, int32(r.Type))
	dst = appendBool(dst, r.Done)
	return appendInt32(dst, int32(r.Err))
}

func (r *MultiHeader) read(d *decoder) {
	r.Type = OpCode(d.int32())
	r.Done = d.bool()
	r.Err = ErrCode(d.int32())
}

// multiEnd is the terminator of both the request and the reply lists.
var multiEnd = MultiHeader{Type: OpError, Done: true, Err: ErrCode(-1)}

// minMultiOpSize is the smallest encoding of one op or result: its header.
const minMultiOpSize = 9

// MultiOp is one operation of a multi or multiRead request. Which fields are
// used depends on Type:
//
//	create, create2, createContainer  Path, Data, ACL, Flags
//	createTTL                         Path, Data, ACL, Flags, TTL
//	delete, check                     Path, Version
//	setData                           Path, Data, Version
//	getData, getChildren (multiRead)  Path, Watch
type MultiOp struct {
	Type    OpCode
	Path    string
	Data    []byte
	ACL     []ACL
	Flags   CreateMode
	TTL     int64
	Version int32
	Watch   bool
}

// MultiRequest is the body of multi and multiRead.
type MultiRequest struct {
	Ops []MultiOp
}

// Append encodes the MultiRequest. An op of a type that has no multi form
// is written as a bare header, which a server rejects.
func (r *MultiRequest) Append(dst []byte) []byte {
	for i := range r.Ops {
		op := &r.Ops[i]
		h := MultiHeader{Type: op.Type, Done: false, Err: -1}
		dst = h.Append(dst)
		switch op.Type {
		case OpCreate, OpCreate2, OpCreateContainer, OpCreateTTL:
			dst = appendString(dst, op.Path)
			dst = appendBuffer(dst, op.Data)
			dst = appendACLs(dst, op.ACL)
			dst = appendInt32(dst, int32(op.Flags))
			if op.Type == OpCreateTTL {
				dst = appendInt64(dst, op.TTL)
			}
		case OpDelete, OpCheck:
			dst = appendString(dst, op.Path)
			dst = appendInt32(dst, op.Version)
		case OpSetData:
			dst = appendString(dst, op.Path)
			dst = appendBuffer(dst, op.Data)
			dst = appendInt32(dst, op.Version)
		case OpGetData, OpGetChildren:
			dst = appendString(dst, op.Path)
			dst = appendBool(dst, op.Watch)
		}
	}
	return multiEnd.Append(dst)
}

func (r *MultiRequest) read(d *decoder) {
	ops := r.Ops[:0]
	if d.mode == Copy {
		ops = nil
	}
	sawRead, sawWrite := false, false
	for d.err == nil {
		var h MultiHeader
		h.read(d)
		if d.err != nil || h.Done {
			break
		}
		// There is no count to trust: ops grow only as their bytes are
		// read, so the slice stays proportional to the input.
		ops = append(ops, MultiOp{Type: h.Type})
		op := &ops[len(ops)-1]
		switch h.Type {
		case OpCreate, OpCreate2, OpCreateContainer, OpCreateTTL:
			sawWrite = true
			op.Path = d.string()
			op.Data = d.buffer()
			op.ACL = d.acls(nil)
			op.Flags = CreateMode(d.int32())
			if h.Type == OpCreateTTL {
				op.TTL = d.int64()
			}
		case OpDelete, OpCheck:
			sawWrite = true
			op.Path = d.string()
			op.Version = d.int32()
		case OpSetData:
			sawWrite = true
			op.Path = d.string()
			op.Data = d.buffer()
			op.Version = d.int32()
		case OpGetData, OpGetChildren:
			sawRead = true
			op.Path = d.string()
			op.Watch = d.bool()
		default:
			d.fail(ErrBadMultiOp)
		}
		if sawRead && sawWrite {
			d.fail(ErrBadMultiOp)
		}
	}
	r.Ops = ops
}

// OpResult is one result of a multi or multiRead reply. Type is the op's
// type (create2 for every create that returns a Stat) or OpError; which other
// fields are used depends on it:
//
//	create       Path
//	create2      Path, Stat
//	setData      Stat
//	getData      Data, Stat
//	getChildren  Children
//	delete/check nothing
//	error        Err
type OpResult struct {
	Type     OpCode
	Err      ErrCode
	Path     string
	Stat     Stat
	Data     []byte
	Children []string
}

// MultiResponse is the reply body of multi and multiRead.
type MultiResponse struct {
	Results []OpResult
}

// Append encodes the MultiResponse.
func (r *MultiResponse) Append(dst []byte) []byte {
	for i := range r.Results {
		res := &r.Results[i]
		h := MultiHeader{Type: res.Type}
		if res.Type == OpError {
			h.Err = res.Err
		}
		dst = h.Append(dst)
		switch res.Type {
		case OpCreate:
			dst = appendString(dst, res.Path)
		case OpCreate2:
			dst = appendString(dst, res.Path)
			dst = res.Stat.Append(dst)
		case OpSetData:
			dst = res.Stat.Append(dst)
		case OpGetData:
			dst = appendBuffer(dst, res.Data)
			dst = res.Stat.Append(dst)
		case OpGetChildren:
			dst = appendStrings(dst, res.Children)
		case OpError:
			dst = appendInt32(dst, int32(res.Err))
		}
	}
	return multiEnd.Append(dst)
}

func (r *MultiResponse) read(d *decoder) {
	results := r.Results[:0]
	if d.mode == Copy {
		results = nil
	}
	for d.err == nil {
		var h MultiHeader
		h.read(d)
		if d.err != nil || h.Done {
			break
		}
		results = append(results, OpResult{Type: h.Type})
		res := &results[len(results)-1]
		switch h.Type {
		case OpCreate:
			res.Path = d.string()
		case OpCreate2:
			res.Path = d.string()
			res.Stat.read(d)
		case OpSetData:
			res.Stat.read(d)
		case OpGetData:
			res.Data = d.buffer()
			res.Stat.read(d)
		case OpGetChildren:
			res.Children = d.strings(nil)
		case OpDelete, OpCheck:
		case OpError:
			// The header and the ErrorResponse both carry the code; the
			// record is the one ZooKeeper's client reads.
			res.Err = ErrCode(d.int32())
		default:
			d.fail(ErrBadMultiOp)
		}
	}
	r.Results = results
}
