//go:build linux

package offload

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// reserve gives the file its size with every block allocated, so that
// writing through the mapping cannot meet a full disk (which would be a
// fault, not an error). A file system without fallocate gets zeros
// written instead.
func reserve(f *os.File, size int64) error {
	if size == 0 {
		return nil
	}
	err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
	if !errors.Is(err, syscall.EOPNOTSUPP) {
		return err
	}
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off); err != nil {
			return err
		}
	}
	return nil
}

// startWriteback starts writing a range just written to disk, without
// waiting: the download streams to disk as it goes instead of piling up
// dirty pages until the kernel throttles it.
func startWriteback(f *os.File, off, n int64) {
	const syncFileRangeWrite = 2 // SYNC_FILE_RANGE_WRITE
	syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, f.Fd(), uintptr(off), uintptr(n), syncFileRangeWrite, 0, 0)
}

func mapShared(f *os.File, size int64) ([]byte, error) {
	if size == 0 {
		return []byte{}, nil
	}
	return syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
}

func protectReadOnly(mem []byte) error {
	if len(mem) == 0 {
		return nil
	}
	if err := syscall.Mprotect(mem, syscall.PROT_READ); err != nil {
		return err
	}
	return dropPages(mem)
}

// dropPages takes the mapping's pages out of the process's resident set.
// For a shared file mapping that loses nothing: a dirty page goes on to
// the page cache and the disk, and the next access maps it again, even
// while another thread writes to it.
func dropPages(mem []byte) error {
	if len(mem) == 0 {
		return nil
	}
	return syscall.Madvise(mem, syscall.MADV_DONTNEED)
}

func unmap(mem []byte) error {
	if len(mem) == 0 {
		return nil
	}
	return syscall.Munmap(mem)
}

// trimEvery is how often a file being filled drops its written pages.
const trimEvery = 10 * time.Millisecond

// trim drops the pages of the mapping while it is filled, until Seal or
// Close.
func (f *File) trim() {
	defer close(f.trimDone)
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	for {
		select {
		case <-f.trimStop:
			return
		case <-t.C:
			dropPages(f.mem)
		}
	}
}
