package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// agentKind is one way to run an agent of the demo: a process that speaks
// the frames of proto.go. A new kind is a new agentKind and a flag that
// asks for it.
type agentKind struct {
	name    string                      // what its hello frame says: "go", "python"
	command func(name string) *exec.Cmd // the process of the agent called name
}

// goAgent runs this binary's hidden "agent" command, publishing through
// store when it is not empty.
func goAgent(self, store string) agentKind {
	return agentKind{"go", func(name string) *exec.Cmd {
		if store != "" {
			return exec.Command(self, "agent", "-name", name, "-store", store)
		}
		return exec.Command(self, "agent", "-name", name)
	}}
}

// wasmAgent runs this binary's hidden "agent" command with its codec and
// its transaction table in a wasm guest.
func wasmAgent(self string) agentKind {
	return agentKind{"wasm", func(name string) *exec.Cmd {
		return exec.Command(self, "agent", "-wasm", "-name", name)
	}}
}

// pythonAgent runs bindings/python/examples/fl_agent.py: cmdline is the
// interpreter and the script; the agent's name follows them.
func pythonAgent(cmdline []string) agentKind {
	return agentKind{"python", func(name string) *exec.Cmd {
		return exec.Command(cmdline[0], append(cmdline[1:], name)...)
	}}
}

// relayKind runs this binary's hidden "relay" command.
func relayKind(self string) agentKind {
	return agentKind{"relay", func(name string) *exec.Cmd {
		return exec.Command(self, "relay", "-name", name)
	}}
}

// proc is a process of the demo, seen from the server.
type proc struct {
	name, kind string
	pid        int64
	startRSS   int64 // its peak resident memory when it said hello
	cmd        *exec.Cmd
	stdin      io.WriteCloser
	in         *frameWriter
	stderr     *tailBuffer

	frames chan map[string]any // what it sends, but progress
	done   chan struct{}       // closed when its output ended
	quit   chan struct{}       // closed when it is killed
	err    error               // why its output ended (set before done closes)

	// onProgress, when set, sees its progress frames.
	onProgress atomic.Pointer[func(done, total int64)]

	waitOnce sync.Once
	waitErr  error
}

// startProc starts the process of kind named name and waits for its
// hello.
func startProc(ctx context.Context, kind agentKind, name string) (*proc, error) {
	cmd := kind.command(name)
	p := &proc{name: name, kind: kind.name, cmd: cmd, stderr: &tailBuffer{max: 4 << 10},
		frames: make(chan map[string]any, 16), done: make(chan struct{}), quit: make(chan struct{})}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s (%s): %w", name, kind.name, err)
	}
	p.in = newFrameWriter(p.stdin)
	go p.read(stdout)

	hctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	f, err := p.recv(hctx, "hello")
	if err != nil {
		p.kill()
		return nil, err
	}
	p.pid, p.startRSS = f.int("pid"), f.int("rss")
	if got, kindGot := f.str("name"), f.str("kind"); f.error() == nil && (got != name || kindGot != kind.name) {
		p.kill()
		return nil, fmt.Errorf("%s (%s) says it is %s (%s)", name, kind.name, got, kindGot)
	}
	if err := f.error(); err != nil {
		p.kill()
		return nil, p.failure(err)
	}
	return p, nil
}

// read reads the process's frames until its output ends.
func (p *proc) read(r io.Reader) {
	defer close(p.done)
	for {
		f, err := readFrame(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("it ended its output")
			}
			p.err = err
			return
		}
		if f["op"] == "progress" {
			fl := newFields(f)
			done, total := fl.int("done"), fl.int("total")
			if fn := p.onProgress.Load(); fn != nil && fl.error() == nil {
				(*fn)(done, total)
			}
			continue
		}
		select {
		case p.frames <- f:
		case <-p.quit:
			p.err = errors.New("killed")
			return
		}
	}
}

// send sends a frame.
func (p *proc) send(v map[string]any) error {
	if err := p.in.write(v); err != nil {
		return p.failure(err)
	}
	return nil
}

// recv returns the next frame, which must be op.
func (p *proc) recv(ctx context.Context, op string) (*fields, error) {
	var f map[string]any
	select {
	case f = <-p.frames:
	case <-p.done:
		select {
		case f = <-p.frames: // sent before its output ended
		default:
			return nil, p.failure(p.err)
		}
	case <-ctx.Done():
		return nil, p.failure(fmt.Errorf("no %q frame: %w", op, context.Cause(ctx)))
	}
	fl := newFields(f)
	if got := fl.str("op"); got != op {
		return nil, p.failure(fmt.Errorf("sent %q, want %q", got, op))
	}
	return fl, nil
}

// failure describes err of the process in one line, with its exit status
// and the last line it wrote on its standard error, if it ended.
func (p *proc) failure(err error) error {
	select {
	case <-p.done:
		if werr := p.wait(5 * time.Second); werr != nil {
			err = werr
		}
	default:
	}
	msg := fmt.Sprintf("%s (%s): %v", p.name, p.kind, err)
	if last := p.stderr.lastLine(); last != "" {
		msg += ": " + last
	}
	return errors.New(msg)
}

// wait waits for the process to end its output and exit, killing it
// after d.
func (p *proc) wait(d time.Duration) error {
	p.waitOnce.Do(func() {
		select {
		case <-p.done: // Wait closes the pipe: read it all first
		case <-time.After(d):
			p.cmd.Process.Kill()
			close(p.quit)
			<-p.done
		}
		if err := p.cmd.Wait(); err != nil {
			p.waitErr = fmt.Errorf("exited: %w", err)
		}
	})
	return p.waitErr
}

// stop closes the process's input, which ends it once its transactions
// have, and waits for it.
func (p *proc) stop(d time.Duration) error {
	p.stdin.Close()
	if err := p.wait(d); err != nil {
		return p.failure(err)
	}
	return nil
}

// kill ends the process now.
func (p *proc) kill() {
	p.stdin.Close()
	p.wait(0)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// lastLine returns the last line that is not blank.
func (b *tailBuffer) lastLine() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := bytes.Split(bytes.TrimRight(b.buf, "\n\r\t "), []byte("\n"))
	return strings.TrimSpace(string(lines[len(lines)-1]))
}
