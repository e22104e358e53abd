"""Decoding with downloads: one path for Host.loads and resolve.

vc_host_decode parses the message and describes a slot per array, the
referenced ones too; new numpy arrays are allocated for them (_slots),
faulted in while the download starts (_prefault), and vc_decode_fetch
fills them, inline copies and downloads alike, in a worker that Ctrl-C
cancels (_interrupt). Resolving LazyRefs is decoding a message that holds
them, so that the core checks their declared shapes against the limits
before anything is allocated and downloads each distinct item once.
"""

from __future__ import annotations

import threading
from typing import Any, List, Optional, Tuple

from . import _codec, _ffi, _offload, _prefault
from ._errors import InvalidError
from ._interrupt import interruptible
from ._refs import LazyRef
from ._slots import alloc_slots, dec_options, decode_skeleton, input_view, spec_table
from ._types import Map, Object, Registry


def fetch_decode(
    handle: int, data: Any, opts: Any, ns: int, registry: Optional[Registry], unknown: str, host: Any, torch: bool = False, offload: Optional[Tuple[str, bool]] = None
) -> Any:
    """Decodes data through host handle (0: the library's own client),
    downloading its references into new numpy arrays (torch tensors), or
    with offload=(directory, keep) into a file there, mapped (_offload)."""
    lib = _ffi.lib()
    view = input_view(data)
    dh, skel_addr, skel_len, specs, n = lib.host_decode(handle, view.ctypes.data, view.nbytes, opts)
    try:
        if offload is not None:
            values = _offload.fill(lib, dh, spec_table(specs, n), n, offload[0], offload[1], ns) if n else []
            return decode_skeleton(skel_addr, skel_len, values, registry, unknown, host)
        values, dst, refs = alloc_slots(specs, n, torch)
        if refs:
            done = threading.Event()
            _prefault.start(values, done)
            try:
                interruptible(lib, dh, lambda: lib.decode_fetch(dh, dst, n, ns))
            finally:
                done.set()
        elif n:
            lib.decode_fetch(dh, dst, n, ns)  # copies only: nothing to wait for
        return decode_skeleton(skel_addr, skel_len, values, registry, unknown, host, torch)
    finally:
        lib.release(dh)
        del view


def fetch_refs(handle: int, refs: List[LazyRef], ns: int, torch: bool = False, offload: Optional[Tuple[str, bool]] = None) -> List[Any]:
    """Downloads refs through host handle (0: the library's own client)
    into new numpy arrays (torch tensors), one per distinct item, or into
    a file (offload)."""
    msg = _codec.dumps(list(refs))
    opts = dec_options("object", False, (0, 0, 0, 0, 0), offload is not None)
    return fetch_decode(handle, msg, opts, ns, None, "object", None, torch, offload)


def walk(value: Any, f: Any) -> Any:
    """Returns value with f(r) in place of each LazyRef r, depth first:
    dicts, lists, Maps and Object data are changed in place, tuples
    rebuilt. Iterative, so that it follows any depth the codec does."""
    holder = [value]
    stack = [_Frame(holder)]
    while stack:
        fr = stack[-1]
        if fr.i == len(fr.positions):
            stack.pop()
            if fr.items is not None:  # a tuple: rebuild it in its parent
                parent = stack[-1]
                parent.put(parent.positions[parent.i - 1], tuple(fr.items))
            continue
        p = fr.positions[fr.i]
        fr.i += 1
        x = fr.get(p)
        if isinstance(x, LazyRef):
            fr.put(p, f(x))
        elif isinstance(x, _CONTAINERS):
            if len(stack) > _ffi.lib().limits().max_depth_limit:
                raise InvalidError("viacodec: value nests too deeply to resolve (a cycle?)")
            stack.append(_Frame(x))
    return holder[0]


_CONTAINERS = (dict, list, tuple, Object)


class _Frame:
    """A container being walked: its positions and the next one; a
    tuple's new items."""

    __slots__ = ("c", "positions", "i", "items")

    def __init__(self, c: Any) -> None:
        self.c = c
        self.i = 0
        self.items = list(c) if isinstance(c, tuple) else None
        if isinstance(c, dict):
            self.positions: Any = list(c)
        elif isinstance(c, Object):
            self.positions = ("data",)
        else:
            self.positions = range(len(c))

    def get(self, p: Any) -> Any:
        c = self.c
        if self.items is not None:
            return self.items[p]
        if isinstance(c, Map):
            return c[p][1]
        if isinstance(c, Object):
            return c.data
        return c[p]

    def put(self, p: Any, v: Any) -> None:
        c = self.c
        if self.items is not None:
            self.items[p] = v
        elif isinstance(c, Map):
            c[p] = (c[p][0], v)
        elif isinstance(c, Object):
            c.data = v
        else:
            c[p] = v
