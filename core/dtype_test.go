package core

import (
	"errors"
	"testing"
)

// TestParseDType: every dtype's name, and only it, parses to the dtype;
// a name one byte off, cut short, padded or too long is refused.
func TestParseDType(t *testing.T) {
	for d := DTypeBool; d < dtypeCount; d++ {
		name := d.String()
		if got, err := ParseDType(name); err != nil || got != d {
			t.Fatalf("ParseDType(%q) = %v, %v; want %v", name, got, err, d)
		}
		for _, bad := range []string{name[:len(name)-1], name + "\x00", "\x00" + name, name + "x", name[1:]} {
			if got, err := ParseDType(bad); !errors.Is(err, ErrInvalid) || got != DTypeInvalid {
				if bad != "" && got.String() == bad {
					continue // another dtype's name (none is today)
				}
				t.Fatalf("ParseDType(%q) = %v, %v; want KindInvalid", bad, got, err)
			}
		}
		for i := range name {
			b := []byte(name)
			b[i] ^= 1
			if got := dtypeNamed(b); got != DTypeInvalid && got.String() != string(b) {
				t.Fatalf("dtypeNamed(%q) = %v", b, got)
			}
		}
	}
	for _, bad := range []string{"", "float8_e4m3fnuz!!", "Float32", "float32 "} {
		if _, err := ParseDType(bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("ParseDType(%q): %v, want KindInvalid", bad, err)
		}
	}
}
