package cli

import "github.com/viacodec/viacodec/core"

// ArrayBytes returns the bytes of the arrays in the value v and its count
// of lazy refs.
func ArrayBytes(v any) (held int64, lazy int64) {
	switch x := v.(type) {
	case *core.Array:
		return int64(len(x.Data)), 0
	case *core.LazyRef:
		return 0, 1
	case map[string]any:
		for _, e := range x {
			h, l := ArrayBytes(e)
			held, lazy = held+h, lazy+l
		}
	case []any:
		for _, e := range x {
			h, l := ArrayBytes(e)
			held, lazy = held+h, lazy+l
		}
	case core.Map:
		for _, e := range x {
			h, l := ArrayBytes(e.Value)
			held, lazy = held+h, lazy+l
		}
	case core.Object:
		return ArrayBytes(x.Data)
	}
	return held, lazy
}
