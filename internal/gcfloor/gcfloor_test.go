package gcfloor

import (
	"os"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		want        int
	}{
		{6 * mb, 16 * mb, 166}, // the goal is 16 MB by the live heap
		{1 * mb, 16 * mb, 400}, // by the heap minimum, 4 MB × 4
		{0, 16 * mb, 400},
		{8 * mb, 16 * mb, 100}, // half the floor: as usual
		{1 << 30, 16 * mb, 100},
		{1, 1 << 62, 1 << 30}, // within an int32
	} {
		if got := percentFor(c.live, c.floor); got != c.want {
			t.Errorf("percentFor(%d, %d) = %d, want %d", c.live, c.floor, got, c.want)
		}
	}
}

// gogc reads the runtime's GOGC.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// collectUntil runs collections until GOGC satisfies ok, for up to 10 s:
// the tuner runs in the finalizer goroutine, after a collection.
func collectUntil(t *testing.T, what string, ok func(int) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		if ok(gogc()) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("GOGC stayed %d, want %s", gogc(), what)
}

// TestStart: with a small live heap the tuner raises GOGC towards the
// floor; with a live heap of half the floor or more it is 100 again.
func TestStart(t *testing.T) {
	if v, set := os.LookupEnv("GOGC"); set { // Start would leave it alone
		os.Unsetenv("GOGC")
		t.Cleanup(func() { os.Setenv("GOGC", v) })
	}
	const floor = 256 << 20
	Start(floor)
	collectUntil(t, "above 100 with a small heap", func(p int) bool { return p > 100 })

	live := make([]byte, floor/2+1<<20)
	for i := range live {
		live[i] = 1 // a live heap of more than half the floor
	}
	collectUntil(t, "100 with a large heap", func(p int) bool { return p == 100 })
	runtime.KeepAlive(live)

	live = nil
	collectUntil(t, "above 100 once the heap is small again", func(p int) bool { return p > 100 })
}
