package wire

import "strconv"

// OpCode is the type field of a RequestHeader, MultiHeader or TxnHeader.
type OpCode int32

// Opcodes of ZooKeeper 3.9 (ZooDefs.OpCode).
const (
	OpNotification         OpCode = 0
	OpCreate               OpCode = 1
	OpDelete               OpCode = 2
	OpExists               OpCode = 3
	OpGetData              OpCode = 4
	OpSetData              OpCode = 5
	OpGetACL               OpCode = 6
	OpSetACL               OpCode = 7
	OpGetChildren          OpCode = 8
	OpSync                 OpCode = 9
	OpPing                 OpCode = 11
	OpGetChildren2         OpCode = 12
	OpCheck                OpCode = 13
	OpMulti                OpCode = 14
	OpCreate2              OpCode = 15
	OpReconfig             OpCode = 16
	OpCheckWatches         OpCode = 17
	OpRemoveWatches        OpCode = 18
	OpCreateContainer      OpCode = 19
	OpDeleteContainer      OpCode = 20
	OpCreateTTL            OpCode = 21
	OpMultiRead            OpCode = 22
	OpAuth                 OpCode = 100
	OpSetWatches           OpCode = 101
	OpSASL                 OpCode = 102
	OpGetEphemerals        OpCode = 103
	OpGetAllChildrenNumber OpCode = 104
	OpSetWatches2          OpCode = 105
	OpAddWatch             OpCode = 106
	OpWhoAmI               OpCode = 107
	OpCreateSession        OpCode = -10
	OpCloseSession         OpCode = -11
	// OpError marks an error result inside a multi reply and an ErrorTxn.
	OpError OpCode = -1
)

var opNames = map[OpCode]string{
	OpNotification: "notification", OpCreate: "create", OpDelete: "delete",
	OpExists: "exists", OpGetData: "getData", OpSetData: "setData",
	OpGetACL: "getACL", OpSetACL: "setACL", OpGetChildren: "getChildren",
	OpSync: "sync", OpPing: "ping", OpGetChildren2: "getChildren2",
	OpCheck: "check", OpMulti: "multi", OpCreate2: "create2",
	OpReconfig: "reconfig", OpCheckWatches: "checkWatches",
	OpRemoveWatches: "removeWatches", OpCreateContainer: "createContainer",
	OpDeleteContainer: "deleteContainer", OpCreateTTL: "createTTL",
	OpMultiRead: "multiRead", OpAuth: "auth", OpSetWatches: "setWatches",
	OpSASL: "sasl", OpGetEphemerals: "getEphemerals",
	OpGetAllChildrenNumber: "getAllChildrenNumber", OpSetWatches2: "setWatches2",
	OpAddWatch: "addWatch", OpWhoAmI: "whoAmI", OpCreateSession: "createSession",
	OpCloseSession: "closeSession", OpError: "error",
}

func (o OpCode) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return "OpCode(" + strconv.Itoa(int(o)) + ")"
}

// Reserved xids: replies the server sends outside the request/response
// pairing carry these in their ReplyHeader (and the client uses the same xid
// on the request where there is one).
const (
	XidNotification int32 = -1 // watch event
	XidPing         int32 = -2 // ping request and reply
	XidAuth         int32 = -4 // auth request and reply
	XidSetWatches   int32 = -8 // setWatches/setWatches2 request and reply
)

// ErrCode is a KeeperException code, carried in ReplyHeader.err, in multi
// results and in ErrorTxn.
type ErrCode int32

// KeeperException codes of ZooKeeper 3.9.
const (
	ErrOK                           ErrCode = 0
	ErrSystemError                  ErrCode = -1
	ErrRuntimeInconsistency         ErrCode = -2
	ErrDataInconsistency            ErrCode = -3
	ErrConnectionLoss               ErrCode = -4
	ErrMarshallingError             ErrCode = -5
	ErrUnimplemented                ErrCode = -6
	ErrOperationTimeout             ErrCode = -7
	ErrBadArguments                 ErrCode = -8
	ErrUnknownSession               ErrCode = -12
	ErrNewConfigNoQuorum            ErrCode = -13
	ErrReconfigInProgress           ErrCode = -14
	ErrAPIError                     ErrCode = -100
	ErrNoNode                       ErrCode = -101
	ErrNoAuth                       ErrCode = -102
	ErrBadVersion                   ErrCode = -103
	ErrNoChildrenForEphemerals      ErrCode = -108
	ErrNodeExists                   ErrCode = -110
	ErrNotEmpty                     ErrCode = -111
	ErrSessionExpired               ErrCode = -112
	ErrInvalidCallback              ErrCode = -113
	ErrInvalidACL                   ErrCode = -114
	ErrAuthFailed                   ErrCode = -115
	ErrSessionMoved                 ErrCode = -118
	ErrNotReadOnly                  ErrCode = -119
	ErrEphemeralOnLocalSession      ErrCode = -120
	ErrNoWatcher                    ErrCode = -121
	ErrRequestTimeout               ErrCode = -122
	ErrReconfigDisabled             ErrCode = -123
	ErrSessionClosedRequireSASLAuth ErrCode = -124
	ErrQuotaExceeded                ErrCode = -125
	ErrThrottledOp                  ErrCode = -127
)

// errNames are the KeeperException.Code names, as operators see them in
// ZooKeeper's logs.
var errNames = map[ErrCode]string{
	ErrOK: "OK", ErrSystemError: "SYSTEMERROR",
	ErrRuntimeInconsistency: "RUNTIMEINCONSISTENCY", ErrDataInconsistency: "DATAINCONSISTENCY",
	ErrConnectionLoss: "CONNECTIONLOSS", ErrMarshallingError: "MARSHALLINGERROR",
	ErrUnimplemented: "UNIMPLEMENTED", ErrOperationTimeout: "OPERATIONTIMEOUT",
	ErrBadArguments: "BADARGUMENTS", ErrUnknownSession: "UNKNOWNSESSION",
	ErrNewConfigNoQuorum: "NEWCONFIGNOQUORUM", ErrReconfigInProgress: "RECONFIGINPROGRESS",
	ErrAPIError: "APIERROR", ErrNoNode: "NONODE", ErrNoAuth: "NOAUTH",
	ErrBadVersion: "BADVERSION", ErrNoChildrenForEphemerals: "NOCHILDRENFOREPHEMERALS",
	ErrNodeExists: "NODEEXISTS", ErrNotEmpty: "NOTEMPTY", ErrSessionExpired: "SESSIONEXPIRED",
	ErrInvalidCallback: "INVALIDCALLBACK", ErrInvalidACL: "INVALIDACL",
	ErrAuthFailed: "AUTHFAILED", ErrSessionMoved: "SESSIONMOVED",
	ErrNotReadOnly: "NOTREADONLY", ErrEphemeralOnLocalSession: "EPHEMERALONLOCALSESSION",
	ErrNoWatcher: "NOWATCHER", ErrRequestTimeout: "REQUESTTIMEOUT",
	ErrReconfigDisabled: "RECONFIGDISABLED", ErrSessionClosedRequireSASLAuth: "SESSIONCLOSEDREQUIRESASLAUTH",
	ErrQuotaExceeded: "QUOTAEXCEEDED", ErrThrottledOp: "THROTTLEDOP",
}

func (e ErrCode) String() string {
	if s, ok := errNames[e]; ok {
		return s
	}
	return "ErrCode(" + strconv.Itoa(int(e)) + ")"
}

// Error makes an ErrCode usable as a Go error.
func (e ErrCode) Error() string {
	return "zookeeper: " + e.String() + " (" + strconv.Itoa(int(e)) + ")"
}

// Known reports whether e is one of ZooKeeper's codes.
func (e ErrCode) Known() bool { _, ok := errNames[e]; return ok }

// EventType is WatcherEvent.type.
type EventType int32

// Watcher event types.
const (
	EventNone                   EventType = -1
	EventNodeCreated            EventType = 1
	EventNodeDeleted            EventType = 2
	EventNodeDataChanged        EventType = 3
	EventNodeChildrenChanged    EventType = 4
	EventDataWatchRemoved       EventType = 5
	EventChildWatchRemoved      EventType = 6
	EventPersistentWatchRemoved EventType = 7
)

var eventNames = map[EventType]string{
	EventNone: "None", EventNodeCreated: "NodeCreated", EventNodeDeleted: "NodeDeleted",
	EventNodeDataChanged: "NodeDataChanged", EventNodeChildrenChanged: "NodeChildrenChanged",
	EventDataWatchRemoved: "DataWatchRemoved", EventChildWatchRemoved: "ChildWatchRemoved",
	EventPersistentWatchRemoved: "PersistentWatchRemoved",
}

func (t EventType) String() string {
	if s, ok := eventNames[t]; ok {
		return s
	}
	return "EventType(" + strconv.Itoa(int(t)) + ")"
}

// KeeperState is WatcherEvent.state.
type KeeperState int32

// Keeper states.
const (
	StateUnknown           KeeperState = -1
	StateDisconnected      KeeperState = 0
	StateNoSyncConnected   KeeperState = 1
	StateSyncConnected     KeeperState = 3
	StateAuthFailed        KeeperState = 4
	StateConnectedReadOnly KeeperState = 5
	StateSaslAuthenticated KeeperState = 6
	StateExpired           KeeperState = -112
	StateClosed            KeeperState = 7
)

var stateNames = map[KeeperState]string{
	StateUnknown: "Unknown", StateDisconnected: "Disconnected",
	StateNoSyncConnected: "NoSyncConnected", StateSyncConnected: "SyncConnected",
	StateAuthFailed: "AuthFailed", StateConnectedReadOnly: "ConnectedReadOnly",
	StateSaslAuthenticated: "SaslAuthenticated", StateExpired: "Expired", StateClosed: "Closed",
}

func (s KeeperState) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return "KeeperState(" + strconv.Itoa(int(s)) + ")"
}

// CreateMode is CreateRequest.flags.
type CreateMode int32

// Create modes (CreateMode.toFlag).
const (
	ModePersistent                  CreateMode = 0
	ModeEphemeral                   CreateMode = 1
	ModePersistentSequential        CreateMode = 2
	ModeEphemeralSequential         CreateMode = 3
	ModeContainer                   CreateMode = 4
	ModePersistentWithTTL           CreateMode = 5
	ModePersistentSequentialWithTTL CreateMode = 6
)

var modeNames = map[CreateMode]string{
	ModePersistent: "PERSISTENT", ModeEphemeral: "EPHEMERAL",
	ModePersistentSequential: "PERSISTENT_SEQUENTIAL", ModeEphemeralSequential: "EPHEMERAL_SEQUENTIAL",
	ModeContainer: "CONTAINER", ModePersistentWithTTL: "PERSISTENT_WITH_TTL",
	ModePersistentSequentialWithTTL: "PERSISTENT_SEQUENTIAL_WITH_TTL",
}

func (m CreateMode) String() string {
	if s, ok := modeNames[m]; ok {
		return s
	}
	return "CreateMode(" + strconv.Itoa(int(m)) + ")"
}

// Valid reports whether m is a flag value ZooKeeper accepts.
func (m CreateMode) Valid() bool { return m >= ModePersistent && m <= ModePersistentSequentialWithTTL }

// Ephemeral reports whether nodes of this mode die with their session.
func (m CreateMode) Ephemeral() bool { return m == ModeEphemeral || m == ModeEphemeralSequential }

// Sequential reports whether the server appends a sequence suffix.
func (m CreateMode) Sequential() bool {
	return m == ModePersistentSequential || m == ModeEphemeralSequential || m == ModePersistentSequentialWithTTL
}

// Container reports whether m is CONTAINER.
func (m CreateMode) Container() bool { return m == ModeContainer }

// TTL reports whether m is one of the TTL modes.
func (m CreateMode) TTL() bool {
	return m == ModePersistentWithTTL || m == ModePersistentSequentialWithTTL
}

// Perm is the permission bit set of an ACL.
type Perm int32

// Permission bits.
const (
	PermRead   Perm = 1 << 0
	PermWrite  Perm = 1 << 1
	PermCreate Perm = 1 << 2
	PermDelete Perm = 1 << 3
	PermAdmin  Perm = 1 << 4
	PermAll    Perm = PermRead | PermWrite | PermCreate | PermDelete | PermAdmin
)

// String renders the bits in zkCli's letters (c, d, r, w, a).
func (p Perm) String() string {
	var b []byte
	for _, f := range []struct {
		bit Perm
		c   byte
	}{{PermCreate, 'c'}, {PermDelete, 'd'}, {PermRead, 'r'}, {PermWrite, 'w'}, {PermAdmin, 'a'}} {
		if p&f.bit != 0 {
			b = append(b, f.c)
		}
	}
	if rest := p &^ PermAll; rest != 0 {
		b = append(b, "|0x"...)
		b = strconv.AppendInt(b, int64(rest), 16)
	}
	return string(b)
}

// WatcherType is the type field of checkWatches and removeWatches.
type WatcherType int32

// Watcher types.
const (
	WatcherChildren WatcherType = 1
	WatcherData     WatcherType = 2
	WatcherAny      WatcherType = 3
	// Persistent and PersistentRecursive name the watches addWatch sets
	// (ZooKeeper 3.6+); removeWatches takes them too.
	WatcherPersistent          WatcherType = 4
	WatcherPersistentRecursive WatcherType = 5
)

func (w WatcherType) String() string {
	switch w {
	case WatcherChildren:
		return "Children"
	case WatcherData:
		return "Data"
	case WatcherAny:
		return "Any"
	case WatcherPersistent:
		return "Persistent"
	case WatcherPersistentRecursive:
		return "PersistentRecursive"
	}
	return "WatcherType(" + strconv.Itoa(int(w)) + ")"
}

// AddWatchMode is AddWatchRequest.mode.
type AddWatchMode int32

// addWatch modes.
const (
	AddWatchPersistent          AddWatchMode = 0
	AddWatchPersistentRecursive AddWatchMode = 1
)

func (m AddWatchMode) String() string {
	switch m {
	case AddWatchPersistent:
		return "PERSISTENT"
	case AddWatchPersistentRecursive:
		return "PERSISTENT_RECURSIVE"
	}
	return "AddWatchMode(" + strconv.Itoa(int(m)) + ")"
}
