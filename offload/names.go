package offload

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/viacodec/viacodec/core"
)

// Names returns the name of each of n slots in the file: its path in
// body, the keys and list indices that lead to it joined by "." ("model.w"
// for {"model": {"w": array}}). A slot found twice under one name gets
// "#" and its index appended; a slot whose path body does not show (one
// inside a registered typed object) is named "slot<i>".
func Names(body any, n int) []string {
	names := make([]string, n)
	used := map[string]bool{}
	var walk func(v any, path []string)
	walk = func(v any, path []string) {
		switch x := v.(type) {
		case core.SlotIndex:
			i := int(x)
			if i < 0 || i >= n || names[i] != "" {
				return
			}
			name := strings.Join(path, ".")
			if name == "" {
				name = "tensor"
			}
			if used[name] {
				name += "#" + strconv.Itoa(i)
			}
			used[name], names[i] = true, name
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(x)) {
				walk(x[k], append(path, k))
			}
		case core.Map:
			for _, e := range x {
				k, ok := e.Key.(string)
				if !ok {
					k = fmt.Sprint(e.Key)
				}
				walk(e.Value, append(path, k))
			}
		case []any:
			for i, e := range x {
				walk(e, append(path, strconv.Itoa(i)))
			}
		case core.Object:
			walk(x.Data, path)
		}
	}
	walk(body, nil)
	for i := range names {
		if names[i] == "" {
			names[i] = "slot" + strconv.Itoa(i)
			for used[names[i]] {
				names[i] += "#"
			}
			used[names[i]] = true
		}
	}
	return names
}
