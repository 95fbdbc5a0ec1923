package engine

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync"
)

// ConnThrottle is ZooKeeper's connection throttle (the
// connection_throttle_* keys of zoo.cfg, off by default): a bucket of
// Tokens, of which each connect request takes one, or a weight, and which
// FillCount tokens refill every FillTime ms. A request the bucket cannot
// pay for is refused, its connection closed unanswered. With FreezeTime
// 0 or more, requests are also dropped at random (BLUE): the chance of a
// drop rises by DropIncrease at most every FreezeTime ms while the bucket
// is empty, and falls by DropDecrease while the tokens taken are at most
// DecreaseRatio of the bucket.
type ConnThrottle struct {
	Tokens, FillTime, FillCount, FreezeTime   int
	DropIncrease, DropDecrease, DecreaseRatio float64
	// WeightEnabled weighs requests: a new session takes GlobalWeight
	// tokens (zkd's sessions are all global), the resumption of one
	// RenewWeight; Tokens and FillCount are then counted in new
	// sessions, and multiplied by GlobalWeight.
	WeightEnabled                          bool
	GlobalWeight, LocalWeight, RenewWeight int
}

// DefaultConnThrottle is ZooKeeper 3.8's: no throttle.
var DefaultConnThrottle = ConnThrottle{FillTime: 1, FillCount: 1, FreezeTime: -1,
	DropIncrease: 0.02, DropDecrease: 0.002, GlobalWeight: 3, LocalWeight: 1, RenewWeight: 2}

// errConnThrottled closes a connection whose connect request the
// throttle refused.
var errConnThrottled = errors.New("too many connect requests: refused by the connection throttle (connection_throttle_tokens)")

// connThrottle is a ConnThrottle at work.
type connThrottle struct {
	mu                  sync.Mutex
	max, tokens         int
	fillTime, fillCount int64
	last                int64 // ms, the server's clock: the last refill
	freeze, lastFreeze  int64
	up, down, point     float64
	drop                float64 // the chance of a random drop
	newWeight, renew    int
	rand                func() float64
}

func newConnThrottle(cfg ConnThrottle, now int64) *connThrottle {
	t := &connThrottle{max: cfg.Tokens, fillTime: int64(cfg.FillTime), fillCount: int64(cfg.FillCount),
		last: now, freeze: int64(cfg.FreezeTime), lastFreeze: now, up: cfg.DropIncrease, down: cfg.DropDecrease,
		point: cfg.DecreaseRatio, newWeight: 1, renew: 1, rand: rand.Float64}
	if cfg.WeightEnabled {
		// As ZooKeeper settles the weights: none below a local session's.
		local := cfg.LocalWeight
		if local <= 0 {
			local = 1
		}
		t.newWeight = cfg.GlobalWeight
		if t.newWeight <= 0 {
			t.newWeight = 3
		}
		t.newWeight = max(t.newWeight, local)
		t.renew = cfg.RenewWeight
		if t.renew <= 0 {
			t.renew = 2
		}
		t.renew = max(t.renew, local)
		t.max *= t.newWeight
		t.fillCount *= int64(t.newWeight)
	}
	t.tokens = t.max
	return t
}

// admit takes the tokens a connect request needs, at now (ms): a new
// session's, or a resumed one's. It reports whether the request may go
// on, and then the tokens missing from the bucket (mntr's
// connection_token_deficit).
func (t *connThrottle) admit(now int64, resume bool) (ok bool, deficit int) {
	if t.max == 0 { // off; max never changes
		return true, 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	need := t.newWeight
	if resume {
		need = t.renew
	}
	if d := now - t.last; d > t.fillTime {
		refill := d * t.fillCount / t.fillTime
		t.tokens = int(min(int64(t.tokens)+refill, int64(t.max)))
		if t.tokens < 0 {
			t.tokens = t.max
		}
		t.last = now
	}
	if t.freeze != -1 && !t.blue(now) {
		return false, 0
	}
	if t.tokens < need {
		return false, 0
	}
	t.tokens -= need
	return true, t.max - t.tokens
}

// blue moves the chance of a random drop, at most once every freeze ms,
// and draws against it. t.mu held.
func (t *connThrottle) blue(now int64) bool {
	taken := t.max - t.tokens
	if now-t.lastFreeze > t.freeze {
		switch {
		case taken == t.max && t.drop < 1:
			t.drop = math.Min(t.drop+t.up, 1)
		case float64(taken) <= math.Round(float64(t.max)*t.point) && t.drop > 0:
			t.drop = math.Max(t.drop-t.down, 0)
		}
		t.lastFreeze = now
	}
	return !(t.rand() < t.drop)
}
