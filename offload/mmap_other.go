//go:build !linux

package offload

import (
	"errors"
	"os"
)

var errNotLinux = errors.New("offloading to a file needs Linux")

func reserve(*os.File, int64) error             { return errNotLinux }
func mapShared(*os.File, int64) ([]byte, error) { return nil, errNotLinux }
func protectReadOnly([]byte) error              { return errNotLinux }
func unmap([]byte) error                        { return nil }
func (f *File) trim()                           { <-f.trimStop; close(f.trimDone) }
func startWriteback(*os.File, int64, int64)     {}
