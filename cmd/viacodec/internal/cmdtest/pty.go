package cmdtest

import (
	"io"
	"os"
	"strconv"
	"syscall"
	"testing"
	"unsafe"
)

// OpenPTY opens the terminal end of a new pseudo-terminal of cols columns
// (0 for a terminal that reports no width); what is written to it is
// copied to drawn (nil to drop it). The test's cleanup closes both ends.
// A machine without pseudo-terminals skips the test.
func OpenPTY(t *testing.T, cols int, drawn io.Writer) *os.File {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	var unlock int32
	var n uint32
	if err := ioctl(ptm, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	if err := ioctl(ptm, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		t.Skipf("ptsname: %v", err)
	}
	tty, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open the terminal end: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	ws := struct{ rows, cols, x, y uint16 }{24, uint16(cols), 0, 0}
	if err := ioctl(tty, syscall.TIOCSWINSZ, unsafe.Pointer(&ws)); err != nil {
		t.Skipf("set the window size: %v", err)
	}
	// Drain what is drawn, so that a writer never blocks on a full terminal.
	if drawn == nil {
		drawn = io.Discard
	}
	go io.Copy(drawn, ptm)
	return tty
}

func ioctl(f *os.File, req uint, arg unsafe.Pointer) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, uintptr(req), uintptr(arg))
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}
