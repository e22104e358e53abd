package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// Progress shows downloads as they go. On a terminal each download is a
// bar: mpb draws several at once (the demo's agents download together),
// from any goroutine, and keeps the lines printed meanwhile above them.
// Elsewhere a download gets a plain line every lineEvery while it runs,
// so that a log of fast downloads stays short.
type Progress struct {
	out       io.Writer
	terminal  bool
	now       func() time.Time
	lineEvery time.Duration

	mu    sync.Mutex
	bars  *mpb.Progress // while bars are drawn
	items map[string]*download
}

// download is one download in progress.
type download struct {
	label string
	bar   *mpb.Bar
	last  time.Time // when its last plain line was printed, or it began
}

// barWidth is the width of a bar with its label and counters.
const barWidth = 100

// NewProgress draws on f: bars when it is a terminal that reports its
// width, plain lines elsewhere (a terminal of 0 columns, as a serial
// console or a bare pseudo-terminal may be, has no room for bars).
func NewProgress(f *os.File) *Progress {
	fd := int(f.Fd())
	bars := term.IsTerminal(fd)
	if bars {
		cols, _, err := term.GetSize(fd)
		bars = err == nil && cols > 0
	}
	return NewProgressTo(f, bars)
}

func NewProgressTo(w io.Writer, terminal bool) *Progress {
	return &Progress{out: w, terminal: terminal, now: time.Now, lineEvery: 2 * time.Second, items: map[string]*download{}}
}

// Update reports done of total bytes of the download key; label names it.
func (p *Progress) Update(key, label string, done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.items[key]
	if !ok {
		d = &download{label: label, last: p.now()}
		p.items[key] = d
		if p.terminal {
			if p.bars == nil {
				p.bars = mpb.New(mpb.WithOutput(p.out), mpb.WithWidth(barWidth), mpb.WithRefreshRate(100*time.Millisecond))
			}
			d.bar = p.bars.New(total, mpb.BarStyle(),
				mpb.PrependDecorators(decor.Name(label, decor.WCSyncSpaceR)),
				mpb.AppendDecorators(
					decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace),
					decor.Percentage(decor.WCSyncSpace),
				),
				mpb.BarRemoveOnComplete(),
			)
		}
	}
	if d.bar != nil {
		d.bar.SetTotal(total, false)
		d.bar.SetCurrent(done)
		return
	}
	if now := p.now(); now.Sub(d.last) >= p.lineEvery && done < total {
		d.last = now
		fmt.Fprintf(p.out, "  %s: %d%% of %s\n", label, percent(done, total), FormatBytes(total))
	}
}

// End ends the download key, complete or not: its bar goes away.
func (p *Progress) End(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLocked(key)
}

func (p *Progress) endLocked(key string) {
	d, ok := p.items[key]
	if !ok {
		return
	}
	delete(p.items, key)
	if d.bar != nil {
		d.bar.Abort(true) // does nothing to a complete bar, which goes by itself
	}
}

// Printf prints a line (above the bars, if any are drawn).
func (p *Progress) Printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.settle()
	if p.bars != nil {
		fmt.Fprintf(p.bars, format, args...)
		return
	}
	fmt.Fprintf(p.out, format, args...)
}

// settle stops drawing once no download is left, after the last frame.
func (p *Progress) settle() {
	if p.bars != nil && len(p.items) == 0 {
		p.bars.Wait()
		p.bars = nil
	}
}

// Close ends every download and stops drawing.
func (p *Progress) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key := range p.items {
		p.endLocked(key)
	}
	p.settle()
}

func percent(done, total int64) int64 {
	if total <= 0 {
		return 100
	}
	return done * 100 / total
}

// FormatBytes writes n in B, KiB, MiB or GiB.
func FormatBytes(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}

// FormatRate writes n bytes in d as a rate, in the unit FormatBytes
// picks; "-" when d is not positive.
func FormatRate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return FormatBytes(int64(float64(n)/d.Seconds())) + "/s"
}
