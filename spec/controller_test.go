package spec

import (
	"sync"
	"testing"
)

func newController(t *testing.T, cfg ControllerConfig) *Controller {
	t.Helper()
	c, err := NewController(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestControllerAdapts(t *testing.T) {
	c := newController(t, ControllerConfig{})
	var st ReqState
	k0 := c.K(&st, 1)
	if k0 < DefaultMinK || k0 > DefaultMaxK {
		t.Fatalf("initial k %d outside [%d, %d]", k0, DefaultMinK, DefaultMaxK)
	}
	// Everything accepted: k climbs to MaxK.
	for range 40 {
		k := c.K(&st, 1)
		c.Observe(&st, k, k)
	}
	if k := c.K(&st, 1); k != DefaultMaxK {
		t.Errorf("after full acceptance k = %d (rate %.3f), want %d", k, c.Rate(&st), DefaultMaxK)
	}
	// Nothing accepted: k falls to MinK.
	for range 40 {
		k := c.K(&st, 1)
		c.Observe(&st, k, 0)
	}
	if k := c.K(&st, 1); k != DefaultMinK {
		t.Errorf("after rejections k = %d (rate %.3f), want %d", k, c.Rate(&st), DefaultMinK)
	}
	// Partial acceptance: in between, monotone in the rate.
	var mid ReqState
	for range 40 {
		c.Observe(&mid, 4, 2)
	}
	if r := c.Rate(&mid); r < 0.6 || r > 0.7 {
		t.Errorf("accepting 2 of 4 each step: rate %.3f, want 2/3 (2 accepted of 3 judged)", r)
	}
	if k := c.K(&mid, 1); k <= DefaultMinK || k >= DefaultMaxK {
		t.Errorf("partial acceptance: k = %d, want strictly between the bounds", k)
	}
}

func TestControllerProbesAgain(t *testing.T) {
	c := newController(t, ControllerConfig{MinK: 0, MaxK: 6})
	var st ReqState
	for range 30 {
		c.Observe(&st, 3, 0)
	}
	if k := c.K(&st, 1); k != 0 {
		t.Fatalf("hopeless drafts: k = %d, want 0", k)
	}
	steps := 0
	for c.K(&st, 1) == 0 {
		c.Observe(&st, 0, 0)
		if steps++; steps > 200 {
			t.Fatal("speculation never resumes")
		}
	}
	t.Logf("speculation resumes after %d steps without drafts", steps)
}

func TestControllerBatchRules(t *testing.T) {
	c := newController(t, ControllerConfig{FixedK: 4, MaxBatch: 32, TokenBudget: 64})
	var st ReqState
	for range 20 {
		c.Observe(&st, 4, 0) // fixed k ignores acceptance
	}
	for _, tc := range []struct{ batch, want int }{
		{1, 4}, {8, 4}, {12, 4}, {13, 3}, {16, 3}, {22, 1}, {32, 0}, {31, 1}, {40, 0},
	} {
		if k := c.K(&st, tc.batch); k != tc.want {
			t.Errorf("batch %d: k = %d, want %d", tc.batch, k, tc.want)
		}
	}
	// Budget alone: 64 tokens, batch 40 → not even one draft each.
	c2 := newController(t, ControllerConfig{FixedK: 2, TokenBudget: 64})
	if k := c2.K(&st, 40); k != 0 {
		t.Errorf("budget 64, batch 40: k = %d, want 0", k)
	}
}

func TestControllerConfig(t *testing.T) {
	for _, cfg := range []ControllerConfig{
		{FixedK: -1}, {MinK: 3, MaxK: 2}, {CostRatio: 1}, {CostRatio: -0.1},
		{HalfLife: -1}, {Prior: 1.5}, {MaxBatch: -1},
	} {
		if _, err := NewController(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

func TestStats(t *testing.T) {
	var s Stats
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				s.Record(4, 2)
				s.Record(0, 0)
				s.Record(20, 20)
			}
		}()
	}
	wg.Wait()
	o := s.Snapshot()
	if o.Drafts != 8000 || o.DraftTokens != 96000 || o.AcceptedTokens != 88000 {
		t.Fatalf("got %+v", o)
	}
	if o.AcceptedAt[0] != 8000 || o.AcceptedAt[2] != 4000 || o.AcceptedAt[MaxTrackedPos-1] != 4000 {
		t.Fatalf("per position: %v", o.AcceptedAt)
	}
	if r := o.AcceptanceRate(); r < 0.916 || r > 0.917 {
		t.Fatalf("rate %v", r)
	}
}
