package engine

import "testing"

// With connection_throttle_freeze_time set, a throttle whose bucket ran
// dry starts dropping connect requests at random, even once tokens are
// back, and stops as the bucket stays full (BLUE). The chance moves at
// most once per freeze time. A draw of 0.3 here: dropped while the
// chance is above 0.3.
func TestConnThrottleDropsAtRandomOnceTheBucketRanDry(t *testing.T) {
	cfg := DefaultConnThrottle
	cfg.Tokens, cfg.FillTime, cfg.FillCount = 4, 10, 4 // full again 11 ms after it empties
	cfg.FreezeTime, cfg.DropIncrease, cfg.DropDecrease, cfg.DecreaseRatio = 5, 0.5, 0.125, 0.25
	th := newConnThrottle(cfg, 0)
	th.rand = func() float64 { return 0.3 }
	var got []bool
	admit := func(now int64) {
		ok, _ := th.admit(now, false)
		got = append(got, ok)
	}
	for range 5 {
		admit(0) // 4 let in, the fifth finds the bucket empty
	}
	admit(6)  // still empty after a freeze time: the chance goes to 0.5, dropped
	admit(20) // refilled, nothing taken: 0.375, still dropped
	admit(26) // 0.25: let in
	admit(32) // 0.125: let in
	want := []bool{true, true, true, true, false, false, false, true, true}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("admitted %v; want %v (chance of a drop now %.2f)", got, want, th.drop)
		}
	}
}
