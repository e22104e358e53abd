package cli

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/viacodec/viacodec/cmd/viacodec/internal/cmdtest"
	"github.com/viacodec/viacodec/internal/syncbuf"
)

// Elsewhere than on a terminal, a download gets a plain line every
// lineEvery while it runs, and none once it is complete.
func TestProgressLines(t *testing.T) {
	var out bytes.Buffer
	p := NewProgressTo(&out, false)
	now := time.Unix(1e9, 0)
	p.now = func() time.Time { return now }
	step := func(d time.Duration, done int64) {
		now = now.Add(d)
		p.Update("a", "round 1: agent-1 <- server", done, 100<<20)
	}
	step(0, 0)
	step(time.Second, 10<<20)
	step(1500*time.Millisecond, 50<<20) // 2.5s since it began
	step(time.Second, 60<<20)
	step(1500*time.Millisecond, 75<<20)
	step(3*time.Second, 100<<20) // complete: its summary says the rest
	p.End("a")
	p.Printf("after %d\n", 1)
	p.Close()
	want := "  round 1: agent-1 <- server: 50% of 100.0 MiB\n" +
		"  round 1: agent-1 <- server: 75% of 100.0 MiB\n" +
		"after 1\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// Bars: updates from several goroutines at once, lines printed between
// them, downloads that end complete or not; close returns.
func TestProgressBars(t *testing.T) {
	var out syncbuf.Buffer
	p := NewProgressTo(&out, true)
	for round := range 3 {
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				key := strings.Repeat("k", i+1)
				for done := int64(0); done <= 1<<20; done += 64 << 10 {
					if i == 3 && done > 1<<19 {
						break // a download that failed half way
					}
					p.Update(key, key, done, 1<<20)
				}
				p.End(key)
			})
		}
		wg.Wait()
		p.Printf("round %d done\n", round)
	}
	p.Close()
	if got := out.String(); !strings.Contains(got, "round 0 done\n") || !strings.Contains(got, "round 2 done\n") {
		t.Fatalf("output %q", got)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 64 << 20: "64.0 MiB", 3 << 29: "1.50 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// A rate is in the unit that fits: a small download is not "0 MiB/s".
func TestFormatRate(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		d    time.Duration
		want string
	}{
		{400 << 10, 10 * time.Millisecond, "39.1 MiB/s"},
		{100 << 10, time.Second, "100.0 KiB/s"},
		{300, time.Second, "300 B/s"},
		{3 << 30, time.Second, "3.00 GiB/s"},
		{0, time.Second, "0 B/s"},
		{1 << 20, 0, "-"},
	} {
		if got := FormatRate(tt.n, tt.d); got != tt.want {
			t.Errorf("FormatRate(%d, %v) = %q, want %q", tt.n, tt.d, got, tt.want)
		}
	}
}

// On a terminal that reports no width (0 columns) bars cannot be drawn:
// progress falls back to plain lines, rather than to nothing. A terminal
// of 80 columns gets bars.
func TestProgressOnTerminals(t *testing.T) {
	for _, tt := range []struct {
		cols int
		want string // what the terminal shows
	}{
		{0, "  download: 50% of 1.0 MiB"},
		{80, "]  1.0 MiB / 1.0 MiB 100 %"},
	} {
		var drawn syncbuf.Buffer
		tty := cmdtest.OpenPTY(t, tt.cols, &drawn)
		p := NewProgress(tty)
		p.lineEvery = 0
		p.Update("a", "download", 512<<10, 1<<20)
		p.Update("a", "download", 1<<20, 1<<20)
		p.End("a")
		p.Printf("done\n")
		p.Close()
		for i := 0; !strings.Contains(drawn.String(), tt.want) || !strings.Contains(drawn.String(), "done"); i++ {
			if i == 200 {
				t.Fatalf("%d columns: the terminal shows %q, want %q and done", tt.cols, drawn.String(), tt.want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
