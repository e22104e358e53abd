//go:build armbe || arm64be || m68k || mips || mips64 || mips64p32 || ppc || ppc64 || s390 || s390x || shbe || sparc || sparc64

package core

// Arrays view Go memory as little-endian bytes (ArrayOf, Elements), so the
// core builds only for little-endian machines.
const _ = "viacodec needs a little-endian machine" + 0
