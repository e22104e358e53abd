"""Value types of the Python value model: Object, Map, and the Registry."""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Iterable, Optional, Tuple, Type

import numpy as np

from ._errors import InvalidError


class Object:
    """A typed object whose name is not registered.

    Decoding a typed object that the registry does not know gives an
    Object; encoding it writes the same typed object again, so a relay
    can forward types it cannot build.

    >>> import viacodec
    >>> o = viacodec.loads(viacodec.dumps(viacodec.Object("demo.Point", [1, 2])))
    >>> o
    Object('demo.Point', [1, 2])
    >>> o.name, o.data
    ('demo.Point', [1, 2])
    """

    __slots__ = ("name", "data")

    def __init__(self, name: str, data: Any) -> None:
        self.name = name
        self.data = data

    def __repr__(self) -> str:
        return f"Object({self.name!r}, {self.data!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Object):
            return NotImplemented
        return self.name == other.name and _equal(self.data, other.data)

    __hash__ = None  # type: ignore[assignment]  # data may be mutable


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return bool(a == b)


class Map(list):
    """A CBOR map whose keys are not all text strings, as a list of
    (key, value) pairs.

    Decoding gives a Map for every map with a key that is neither an int
    nor a text string (bytes, bool, None), in message order (sorted by
    encoded key); a map whose keys are all text strings, or all ints and
    text strings, decodes to a dict. A Python dict cannot keep keys 1 and
    True apart, which CBOR does; a Map can. Encoding accepts a Map and a
    dict with such keys alike. Floats are not map keys.

    >>> import viacodec
    >>> m = viacodec.loads(viacodec.dumps({1: "a", b"k": "b"}))
    >>> m
    Map([(1, 'a'), (b'k', 'b')])
    >>> dict(m)[1]
    'a'
    """

    def __init__(self, pairs: Iterable[Tuple[Any, Any]] = ()) -> None:
        super().__init__((k, v) for k, v in pairs)

    def __repr__(self) -> str:
        return f"Map({list.__repr__(self)})"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # The encoder finds Map and its subclasses by exact class (else a
        # subclass would encode as the list it also is).
        super().__init_subclass__(**kwargs)
        MAP_CLASSES.append(cls)


#: Map and its subclasses.
MAP_CLASSES: list = [Map]


# Types the value model gives a meaning of their own: registering them
# would make encoding ambiguous.
_BUILTIN = (type(None), bool, int, float, str, bytes, bytearray, memoryview, list, tuple, dict, Map, Object, np.ndarray)


class _Entry:
    __slots__ = ("cls", "name", "to_data", "from_data")

    def __init__(self, cls: type, name: str, to_data: Callable[[Any], Any], from_data: Callable[[Any], Any]) -> None:
        self.cls = cls
        self.name = name
        self.to_data = to_data
        self.from_data = from_data


class Registry:
    """Maps classes to stable names, with the functions that turn an
    instance into plain data (to_data) and back (from_data).

    Names travel on the wire; code never does: an unknown name decodes to
    an Object (or raises UnregisteredError with unknown="error"), never to
    a class found by name. Lookup on encode is by exact class: a subclass
    of a registered class is not encoded as it. Safe for concurrent use.

    >>> import viacodec
    >>> class Point:
    ...     def __init__(self, x, y): self.x, self.y = x, y
    >>> reg = viacodec.Registry()
    >>> reg.register(Point, "demo.Point", lambda p: [p.x, p.y], lambda d: Point(*d))
    >>> p = viacodec.loads(viacodec.dumps(Point(1, 2), registry=reg), registry=reg)
    >>> (p.x, p.y)
    (1, 2)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_type: Dict[type, _Entry] = {}
        self._by_name: Dict[str, _Entry] = {}

    def register(
        self,
        cls: Type[Any],
        name: str,
        to_data: Callable[[Any], Any],
        from_data: Callable[[Any], Any],
    ) -> None:
        """Registers cls under name. A name or class may be registered once.

        Raises InvalidError for a duplicate, an empty or reserved name, a
        class of the value model itself (int, dict, numpy.ndarray, ...),
        or functions that are not callable.
        """
        if not isinstance(cls, type):
            raise InvalidError(f"viacodec: register needs a class, not {cls!r}")
        if not isinstance(name, str) or not name:
            raise InvalidError("viacodec: register needs a non-empty name")
        if not callable(to_data) or not callable(from_data):
            raise InvalidError("viacodec: register needs two functions, to_data and from_data")
        if cls in _BUILTIN or issubclass(cls, np.generic):
            raise InvalidError(f"viacodec: cannot register {cls.__name__}: it is part of the value model")
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidError(f"viacodec: type name {name!r} is not valid UTF-8") from None
        with self._lock:
            if name in self._by_name:
                raise InvalidError(f"viacodec: type name {name!r} is already registered")
            if cls in self._by_type:
                raise InvalidError(f"viacodec: class {cls.__qualname__} is already registered")
            entry = _Entry(cls, name, to_data, from_data)
            # Replace the dicts instead of mutating them, so that readers
            # never lock.
            self._by_type = {**self._by_type, cls: entry}
            self._by_name = {**self._by_name, name: entry}

    def classes(self) -> Tuple[type, ...]:
        """The registered classes."""
        return tuple(self._by_type)

    def by_type(self, cls: type) -> Optional[_Entry]:
        return self._by_type.get(cls)

    def by_name(self, name: str) -> Optional[_Entry]:
        return self._by_name.get(name)


#: The registry dumps and loads use when none is given.
default_registry = Registry()


def register(cls: Type[Any], name: str, to_data: Callable[[Any], Any], from_data: Callable[[Any], Any]) -> None:
    """Registers cls under name in the default registry.

    to_data turns an instance into a value viacodec can encode (it may hold
    numpy arrays); from_data builds an instance from the decoded data.

    >>> import dataclasses, viacodec
    >>> @dataclasses.dataclass
    ... class Weights:
    ...     layer: str
    ...     w: "numpy.ndarray"
    >>> viacodec.register(Weights, "demo.Weights",
    ...                   lambda x: {"layer": x.layer, "w": x.w},
    ...                   lambda d: Weights(d["layer"], d["w"]))
    """
    default_registry.register(cls, name, to_data, from_data)
