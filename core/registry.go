package core

import (
	"reflect"
	"sync"
)

// Registry maps Go types to stable names, with the functions that turn a
// value into plain data (decompose) and back (recompose). Names travel on
// the wire; code never does: an unknown name decodes to an Object or an
// error (DecOptions.UnknownTypes), never to a type found by name.
//
// A Registry is safe for concurrent use. Register types before the modes
// that use it encode or decode.
type Registry struct {
	mu     sync.RWMutex
	byName map[string]*typeEntry
	byType map[reflect.Type]*typeEntry
}

type typeEntry struct {
	name      string
	decompose func(any) (any, error)
	recompose func(any) (any, error)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byName: map[string]*typeEntry{}, byType: map[reflect.Type]*typeEntry{}}
}

// Register adds type T under name. decompose turns a T into a value of the
// value model (it may hold arrays); recompose builds a T from the decoded
// data. A name or type may be registered once.
func Register[T any](r *Registry, name string, decompose func(T) (any, error), recompose func(data any) (T, error)) error {
	if r == nil || name == "" || decompose == nil || recompose == nil {
		return errorf(KindInvalid, "Register needs a registry, a name and both functions")
	}
	t := reflect.TypeFor[T]()
	if t.Kind() == reflect.Interface {
		return errorf(KindInvalid, "cannot register interface type %v", t)
	}
	e := &typeEntry{
		name: name,
		decompose: func(v any) (any, error) {
			return decompose(v.(T))
		},
		recompose: func(data any) (any, error) {
			return recompose(data)
		},
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.byName[name]; dup {
		return errorf(KindInvalid, "type name %q is already registered", name)
	}
	if _, dup := r.byType[t]; dup {
		return errorf(KindInvalid, "type %v is already registered", t)
	}
	r.byName[name] = e
	r.byType[t] = e
	return nil
}

func (r *Registry) lookupType(t reflect.Type) *typeEntry {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byType[t]
}

func (r *Registry) lookupName(name string) *typeEntry {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byName[name]
}
