//go:build !amd64

package crc32c

const haveFold = false

func fold(s uint32, p []byte) uint32 { panic("unreachable") }
