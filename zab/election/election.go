// Package election is ZooKeeper's Fast Leader Election as a state machine
// that does no I/O: notifications and the time come in (Step, Tick), and
// what to send, and the outcome, go out (Ready). The engine owns the
// election port's connections and the timers; the same inputs always give
// the same outputs, so tests replay scripted scenarios.
//
// It follows ZooKeeper 3.8's FastLeaderElection (the rules are in
// shared/reference/zab-protocol.md, sections 1.5 to 1.8): a server votes
// for the server with the highest (epoch, zxid, id) it has heard of, in
// rounds numbered by the logical clock; it decides once a quorum of the
// voters holds the same vote in its round and no better vote arrives for
// the finalize wait; a server that starts or restarts while a leader is
// established joins it once a quorum of the servers it hears from say
// they follow or lead it and the leader itself says it leads.
package election

import (
	"slices"
	"time"

	"zkd/wire"
	"zkd/zab/quorum"
)

// Vote is a proposal for the leader, as a notification carries it.
type Vote struct {
	Leader        int64
	Zxid          int64
	ElectionEpoch int64
	PeerEpoch     int64
}

// Config is what an election needs to know about the ensemble.
type Config struct {
	ID int64
	// Voters are the participants' ids. A server not among them (an
	// observer) never proposes itself and decides OBSERVING.
	Voters []int64
	// Quorum, when set, says which sets of voters are quorums (and
	// replaces Voters by its own); nil is a majority of Voters.
	Quorum *quorum.Quorum
	// QuorumConfig is the committed ensemble config's text, sent in every
	// notification (server.N=… lines and version=…).
	QuorumConfig string
	// FinalizeWait is how long a vote a quorum agrees on must stand
	// before the server decides (ZooKeeper: 200 ms).
	FinalizeWait time.Duration
	// MinNotificationInterval and MaxNotificationInterval bound the wait
	// for a notification before the server sends its vote again; the wait
	// doubles each time nothing came (ZooKeeper: 200 ms and 60 s).
	MinNotificationInterval, MaxNotificationInterval time.Duration
}

// Message is a notification to send to server To.
type Message struct {
	To int64
	N  wire.Notification
}

// Ready is what the election asks of its driver after an input.
type Ready struct {
	// Messages go to their servers, each to be sent after the ones before
	// it to the same server.
	Messages []Message
	// Decided is set once, when the election ends: the server now has
	// State and follows, leads or observes Vote.Leader.
	Decided bool
	State   wire.PeerState
	Vote    Vote
	// Deadline is when Tick must be called next; zero when no timer is
	// needed (the election is over).
	Deadline time.Duration
}

// recorded is a vote as the election keeps it for counting: Java's Vote,
// whose equality depends on the states and versions on both sides.
type recorded struct {
	Vote
	state   wire.PeerState
	version int32
}

// same is ZooKeeper's vote equality: all four fields when either side is
// LOOKING; otherwise the leader and its epoch, or the leader alone when
// exactly one side predates notification versions.
func (a recorded) same(b recorded) bool {
	if a.state == wire.StateLooking || b.state == wire.StateLooking {
		return a.Vote == b.Vote
	}
	if (a.version > 0) != (b.version > 0) {
		return a.Leader == b.Leader
	}
	return a.Leader == b.Leader && a.PeerEpoch == b.PeerEpoch
}

// Election is one server's side of leader election.
type Election struct {
	cfg    Config
	voters map[int64]bool
	quorum *quorum.Quorum

	state wire.PeerState
	// current is the vote the server holds outside an election (its
	// result, or its initial vote before the first one).
	current Vote
	// The election in progress.
	clock                    int64 // logicalclock: the round
	initZxid, initEpoch      int64
	proposal                 Vote // Leader, Zxid and PeerEpoch of the proposal
	recvset, outOfElection   map[int64]recorded
	finalizing               bool
	finalizeAt               time.Duration
	notTimeout, pollDeadline time.Duration
	now                      time.Duration
	ready                    Ready
	started                  bool
}

// invalid is the vote of a server that may not lead (Long.MIN_VALUE).
const invalid = -1 << 63

// New returns an election for the server cfg.ID, not started.
func New(cfg Config) *Election {
	if cfg.FinalizeWait == 0 {
		cfg.FinalizeWait = 200 * time.Millisecond
	}
	if cfg.MinNotificationInterval == 0 {
		cfg.MinNotificationInterval = 200 * time.Millisecond
	}
	if cfg.MaxNotificationInterval == 0 {
		cfg.MaxNotificationInterval = 60 * time.Second
	}
	if cfg.Quorum == nil {
		cfg.Quorum = quorum.Majority(cfg.Voters)
	}
	cfg.Voters = cfg.Quorum.Voters()
	e := &Election{cfg: cfg, voters: map[int64]bool{}, quorum: cfg.Quorum, state: wire.StateLooking}
	for _, v := range cfg.Voters {
		e.voters[v] = true
	}
	return e
}

// participant reports whether this server may vote and lead.
func (e *Election) participant() bool { return e.voters[e.cfg.ID] }

// Start begins an election round (lookForLeader): the server goes LOOKING
// with its initial vote for itself, made of the last zxid in its log and
// its current epoch, and sends it to every voter.
func (e *Election) Start(now time.Duration, lastZxid, currentEpoch int64) {
	e.now = now
	e.state = wire.StateLooking
	e.initZxid, e.initEpoch = lastZxid, currentEpoch
	if !e.participant() {
		e.initZxid, e.initEpoch = invalid, invalid
	}
	if !e.started {
		// Before its first election a server answers with a vote for
		// itself made outside any round.
		e.current = Vote{Leader: e.cfg.ID, Zxid: lastZxid, ElectionEpoch: -1, PeerEpoch: currentEpoch}
	}
	e.started = true
	e.recvset = map[int64]recorded{}
	e.outOfElection = map[int64]recorded{}
	e.finalizing = false
	e.clock++
	e.proposal = Vote{Leader: e.initID(), Zxid: e.initZxid, PeerEpoch: e.initEpoch}
	e.notTimeout = e.cfg.MinNotificationInterval
	e.pollDeadline = now + e.notTimeout
	e.sendNotifications()
}

func (e *Election) initID() int64 {
	if e.participant() {
		return e.cfg.ID
	}
	return invalid
}

// State is the server's state: LOOKING during an election, then what it
// decided.
func (e *Election) State() wire.PeerState { return e.state }

// Current is the vote the server answers LOOKING servers with outside an
// election.
func (e *Election) Current() Vote { return e.current }

// SetPeerEpoch records the epoch a follower synced to or a leader
// established (updateElectionVote): the vote it answers LOOKING servers
// with names that epoch, so that they can join.
func (e *Election) SetPeerEpoch(epoch int64) { e.current.PeerEpoch = epoch }

// Ready returns what the last inputs asked for and clears it.
func (e *Election) Ready() Ready {
	r := e.ready
	e.ready = Ready{}
	if e.started && e.state == wire.StateLooking {
		r.Deadline = e.pollDeadline
		if e.finalizing {
			r.Deadline = e.finalizeAt
		}
	}
	return r
}

// Tick tells the election the time. A finalize wait that ran out decides;
// a notification wait that ran out sends the vote again and doubles the
// wait.
func (e *Election) Tick(now time.Duration) {
	e.now = now
	if !e.started || e.state != wire.StateLooking {
		return
	}
	if e.finalizing {
		if now >= e.finalizeAt {
			e.decide(e.proposalVote(), e.proposal.Leader)
		}
		return
	}
	if now >= e.pollDeadline {
		e.sendNotifications()
		e.notTimeout = min(2*e.notTimeout, e.cfg.MaxNotificationInterval)
		e.pollDeadline = now + e.notTimeout
	}
}

// proposalVote is the proposal in the current round.
func (e *Election) proposalVote() Vote {
	v := e.proposal
	v.ElectionEpoch = e.clock
	return v
}

func (e *Election) notification(v Vote, epoch int64) wire.Notification {
	return wire.Notification{State: e.state, Leader: v.Leader, Zxid: v.Zxid, ElectionEpoch: epoch,
		PeerEpoch: v.PeerEpoch, Version: wire.NotificationVersion, Config: e.cfg.QuorumConfig}
}

// sendNotifications sends the proposal to every voter; the server's own
// copy is counted at once, as a received one.
func (e *Election) sendNotifications() {
	n := e.notification(e.proposal, e.clock)
	for _, to := range e.sortedVoters() {
		if to == e.cfg.ID {
			continue
		}
		e.ready.Messages = append(e.ready.Messages, Message{To: to, N: n})
	}
	if e.participant() {
		e.lookingStep(e.cfg.ID, n)
	}
}

func (e *Election) sortedVoters() []int64 {
	ids := make([]int64, 0, len(e.voters))
	for id := range e.voters {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (e *Election) reply(to int64, n wire.Notification) {
	e.ready.Messages = append(e.ready.Messages, Message{To: to, N: n})
}

// Step handles a notification from server from, in any state, as
// ZooKeeper's receiver and lookForLeader do between them.
func (e *Election) Step(now time.Duration, from int64, n wire.Notification) {
	e.now = now
	if n.State > wire.StateObserving || n.State < 0 {
		return // ZooKeeper drops an unknown state
	}
	if !e.started {
		// Nothing to answer with before the first election: the
		// sender asks again on its own timer.
		return
	}
	if !e.voters[from] {
		// An observer or a server outside the config: answered at once
		// with the vote this server holds, never counted.
		e.reply(from, e.notification(e.current, e.clock))
		return
	}
	if e.state != wire.StateLooking {
		// Outside an election a LOOKING voter is told whom this server
		// follows or leads, with the round that elected it.
		if n.State == wire.StateLooking {
			e.reply(from, e.notification(e.current, e.current.ElectionEpoch))
		}
		return
	}
	if n.State == wire.StateLooking && n.ElectionEpoch < e.clock {
		// A LOOKING voter behind this round is told the proposal.
		e.reply(from, e.notification(e.proposal, e.clock))
	}
	if e.finalizing {
		// While the quorum's vote stands, only a better vote counts: it
		// ends the wait and is handled as usual; others are dropped,
		// their sender told the vote that stands (see lookingStep).
		if !e.better(n.Leader, n.Zxid, n.PeerEpoch, e.proposal) {
			e.tellWorse(from, n)
			return
		}
		e.finalizing = false
	}
	if !e.voters[n.Leader] {
		return // a vote for a server that may not lead
	}
	switch n.State {
	case wire.StateLooking:
		e.lookingStep(from, n)
	case wire.StateFollowing, wire.StateLeading:
		e.establishedStep(from, n)
	}
	// OBSERVING notifications are not counted.
}

// better is totalOrderPredicate: does (leader, zxid, epoch) beat cur?
// A vote for a server of weight 0 (hierarchical quorums) never does: it
// may not lead. Unlike ZooKeeper's, a vote for a server that may lead
// beats one for a server of weight 0 (such a server's vote for itself):
// the order stays total, so no two servers each find the other's vote
// worse and answer it (tellWorse) back and forth for ever.
func (e *Election) better(leader, zxid, epoch int64, cur Vote) bool {
	if e.quorum.Weight(leader) == 0 {
		return false
	}
	if e.quorum.IsVoter(cur.Leader) && e.quorum.Weight(cur.Leader) == 0 {
		return true
	}
	if epoch != cur.PeerEpoch {
		return epoch > cur.PeerEpoch
	}
	if zxid != cur.Zxid {
		return zxid > cur.Zxid
	}
	return leader > cur.Leader
}

// lookingStep counts a LOOKING server's vote.
func (e *Election) lookingStep(from int64, n wire.Notification) {
	// A server with no data to load (zxid -1) takes no part.
	if e.initZxid == -1 || n.Zxid == -1 {
		return
	}
	switch {
	case n.ElectionEpoch > e.clock:
		e.clock = n.ElectionEpoch
		clear(e.recvset)
		init := Vote{Leader: e.initID(), Zxid: e.initZxid, PeerEpoch: e.initEpoch}
		if e.better(n.Leader, n.Zxid, n.PeerEpoch, init) {
			e.proposal = Vote{Leader: n.Leader, Zxid: n.Zxid, PeerEpoch: n.PeerEpoch}
		} else {
			e.proposal = init
		}
		e.sendNotifications()
	case n.ElectionEpoch < e.clock:
		return
	case e.better(n.Leader, n.Zxid, n.PeerEpoch, e.proposal):
		e.proposal = Vote{Leader: n.Leader, Zxid: n.Zxid, PeerEpoch: n.PeerEpoch}
		e.sendNotifications()
	default:
		e.tellWorse(from, n)
	}
	e.recvset[from] = recorded{Vote: Vote{n.Leader, n.Zxid, n.ElectionEpoch, n.PeerEpoch}, state: wire.StateLooking}
	if e.hasQuorum(e.recvset, recorded{Vote: e.proposalVote(), state: wire.StateLooking}) && !e.finalizing {
		e.finalizing = true
		e.finalizeAt = e.now + e.cfg.FinalizeWait
	}
}

// tellWorse answers a LOOKING voter of this round whose vote is worse
// than this server's proposal with that proposal. ZooKeeper does not: the
// voter learns it only when this server sends its vote again, after the
// notification timeout (200 ms). That is what happens when a leader dies
// and two servers go LOOKING a moment apart: each one's first vote reaches
// the other while it still follows, is answered as a follower's, and is
// not counted; the one with the worse vote then never hears the better
// one until the timeout. The answer is an ordinary notification.
func (e *Election) tellWorse(from int64, n wire.Notification) {
	if from == e.cfg.ID || !e.participant() || !e.voters[from] || n.State != wire.StateLooking || n.ElectionEpoch != e.clock ||
		(n.Leader == e.proposal.Leader && n.Zxid == e.proposal.Zxid && n.PeerEpoch == e.proposal.PeerEpoch) {
		return
	}
	e.reply(from, e.notification(e.proposal, e.clock))
}

// establishedStep counts a vote from a server that follows or leads: how
// a server joins a running ensemble, or learns the outcome of its round
// from servers that decided first.
func (e *Election) establishedStep(from int64, n wire.Notification) {
	vote := Vote{n.Leader, n.Zxid, n.ElectionEpoch, n.PeerEpoch}
	asSent := recorded{Vote: vote, state: n.State, version: n.Version}
	if n.ElectionEpoch == e.clock {
		e.recvset[from] = recorded{Vote: vote, state: n.State}
		if e.hasQuorum(e.recvset, asSent) && e.checkLeader(e.recvset, n.Leader, n.ElectionEpoch) {
			e.decide(vote, n.Leader)
			return
		}
	}
	e.outOfElection[from] = asSent
	if e.hasQuorum(e.outOfElection, asSent) && e.checkLeader(e.outOfElection, n.Leader, n.ElectionEpoch) {
		e.clock = n.ElectionEpoch
		e.decide(vote, n.Leader)
	}
}

// checkLeader: a leader other than this server must itself say it leads;
// this server leads only in the round that elected it.
func (e *Election) checkLeader(votes map[int64]recorded, leader, epoch int64) bool {
	if leader != e.cfg.ID {
		v, ok := votes[leader]
		return ok && v.state == wire.StateLeading
	}
	return e.clock == epoch
}

// hasQuorum reports whether the voters that hold a vote equal to v make
// a quorum.
func (e *Election) hasQuorum(votes map[int64]recorded, v recorded) bool {
	set := make(map[int64]bool, len(votes))
	for sid, got := range votes {
		if v.same(got) {
			set[sid] = true
		}
	}
	return e.quorum.Contains(set)
}

// decide ends the election with vote.
func (e *Election) decide(vote Vote, leader int64) {
	switch {
	case leader == e.cfg.ID:
		e.state = wire.StateLeading
	case e.participant():
		e.state = wire.StateFollowing
	default:
		e.state = wire.StateObserving
	}
	e.current = vote
	e.finalizing = false
	e.ready.Decided, e.ready.State, e.ready.Vote = true, e.state, vote
}
