"""The exception hierarchy, one class per core.Kind.

The C ABI returns a core.Kind as its status code; each maps to one class
here. The numbers are stable (core/errors.go never renumbers them).
"""

from __future__ import annotations

import enum
import re
from typing import Any, Optional


class ErrorKind(enum.IntEnum):
    """What went wrong: core.Kind, the C ABI's status code. An IntEnum, so
    ``err.kind == 11`` still holds for ``ErrorKind.TIMEOUT``."""

    NONE = 0
    INVALID = 1
    SYNTAX = 2
    LIMIT = 3
    UNKNOWN_TAG = 4
    MISMATCH = 5
    UNREGISTERED = 6
    PROTOCOL = 7
    UNKNOWN_REF = 8
    EXPIRED = 9
    AUTH = 10
    TIMEOUT = 11
    ABORTED = 12
    CHECKSUM = 13
    UNAVAILABLE = 14


class ViacodecError(Exception):
    """Base class of every viacodec error. Each class is also the builtin
    exception that fits it (ValueError, TypeError, TimeoutError, ...), so
    ``except TimeoutError`` catches a timeout and ``except
    ViacodecError`` catches everything viacodec raises.

    Attributes:
        kind: the ErrorKind (an int: the C ABI status code).
        message: the error text.
        offset: byte offset in the input the error points at, or None.
    """

    kind: int = ErrorKind.NONE

    def __new__(cls, message: str = "", offset: Optional[int] = None) -> "ViacodecError":
        # One argument for the builtin: OSError's subclasses would read two
        # as (errno, strerror).
        return super().__new__(cls, message)  # type: ignore[call-arg]

    def __init__(self, message: str = "", offset: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset

    def __reduce__(self) -> Any:
        return (type(self), (self.message, self.offset), self.__dict__)

    def __str__(self) -> str:
        return self.message


class InvalidError(ViacodecError, ValueError):
    """Bad argument, or a value viacodec cannot encode (kind 1)."""

    kind = ErrorKind.INVALID


class UnsupportedTypeError(InvalidError, TypeError):
    """A value of a type viacodec does not encode (a set, an object not in
    the value model nor registered, a numpy dtype it lacks), or an argument
    of the wrong type (kind 1, invalid): a TypeError too."""


class DecodeSyntaxError(ViacodecError, ValueError):
    """Input that is not well-formed or not valid CBOR (kind 2); has an offset."""

    kind = ErrorKind.SYNTAX


class LimitError(ViacodecError, ValueError):
    """A decode (or nesting) limit was exceeded (kind 3)."""

    kind = ErrorKind.LIMIT


class UnknownTagError(ViacodecError, ValueError):
    """A CBOR tag the format does not define (kind 4)."""

    kind = ErrorKind.UNKNOWN_TAG


class MismatchError(ViacodecError, ValueError):
    """dtype, shape or data length disagree (kind 5)."""

    kind = ErrorKind.MISMATCH


class UnregisteredError(ViacodecError, ValueError):
    """A typed object whose name is not registered, in strict mode (kind 6)."""

    kind = ErrorKind.UNREGISTERED


class ProtocolError(ViacodecError, ValueError):
    """Well-formed CBOR that breaks the viacodec format (kind 7)."""

    kind = ErrorKind.PROTOCOL


class UnknownRefError(ViacodecError, LookupError):
    """A reference, batch or item nobody knows (kind 8)."""

    kind = ErrorKind.UNKNOWN_REF


class ExpiredError(ViacodecError, LookupError):
    """A reference whose transaction has finished (kind 9)."""

    kind = ErrorKind.EXPIRED


class AuthError(ViacodecError, PermissionError):
    """A missing or wrong capability token (kind 10)."""

    kind = ErrorKind.AUTH


class ViacodecTimeoutError(ViacodecError, TimeoutError):
    """A deadline passed (kind 11): a TimeoutError too."""

    kind = ErrorKind.TIMEOUT


class AbortedError(ViacodecError):
    """Cancelled by the caller or the source (kind 12)."""

    kind = ErrorKind.ABORTED


class ChecksumError(ViacodecError):
    """Downloaded bytes do not match their checksum (kind 13)."""

    kind = ErrorKind.CHECKSUM


class SourceUnavailableError(ViacodecError, ConnectionError):
    """The source cannot be reached (kind 14): a ConnectionError too."""

    kind = ErrorKind.UNAVAILABLE


class ForkedProcessError(InvalidError):
    """The library was used in a process forked from one that had loaded
    it: its Go runtime does not survive a fork. Use the "spawn" start
    method of multiprocessing."""


_BY_KIND = {
    cls.kind: cls
    for cls in (
        InvalidError,
        DecodeSyntaxError,
        LimitError,
        UnknownTagError,
        MismatchError,
        UnregisteredError,
        ProtocolError,
        UnknownRefError,
        ExpiredError,
        AuthError,
        ViacodecTimeoutError,
        AbortedError,
        ChecksumError,
        SourceUnavailableError,
    )
}

# The names core gives the kinds (core.Kind.String), checked against the
# library's vc_kind_name by the tests.
KIND_NAMES = {int(k): k.name.lower().replace("_", " ") for k in ErrorKind}


def error_for(kind: int, message: str, offset: Optional[int] = None) -> ViacodecError:
    """Returns the exception of class kind (ViacodecError for a kind this
    package does not know, with its number kept in .kind)."""
    cls = _BY_KIND.get(kind)
    if cls is None:
        err = ViacodecError(message, offset)
        err.kind = kind
        return err
    return cls(message, offset)


# The core names its options as Go does; the package's callers know them
# as keyword arguments.
_OPTION_NAMES = {
    "MaxDepth": "max_depth",
    "MaxElements": "max_elements",
    "MaxByteLen": "max_byte_len",
    "MaxMessageSize": "max_message_size",
    "MaxArrayBytes": "max_array_bytes",
    "RefThreshold": "ref_threshold",
}
# Only where the core names an option, always before its value.
_OPTION_RE = re.compile(r"\b(?:DecOptions\.|EncOptions\.)?(" + "|".join(_OPTION_NAMES) + r")(?= -?\d)")


def python_text(msg: str) -> str:
    """The library's error text as a Python caller reads it: the core's
    option names become the keyword arguments they are here."""
    return _OPTION_RE.sub(lambda m: _OPTION_NAMES[m.group(1)], msg)
