"""python -m viacodec FILE: prints a viacodec message in CBOR diagnostic
notation, as the library writes it (core.Diagnose, what `viacodec
inspect` prints): array payloads and capability tokens shortened, with
comments giving each array's dtype and byte count. Nothing is downloaded.

    python -m viacodec message.cbor
    python -m viacodec --width 0 - < message.cbor     # one line, from stdin
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import _ffi
from ._errors import ViacodecError


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m viacodec",
        description="Print a viacodec message in CBOR diagnostic notation (nothing is downloaded).",
    )
    p.add_argument("file", help="the message file, or - for standard input")
    p.add_argument("--width", type=int, default=100, help="column past which lists and maps break over lines; 0 for one line (default 100)")
    p.add_argument("--full", action="store_true", help="write every byte string whole, tokens and array payloads included")
    args = p.parse_args(argv)
    if args.width < 0:
        p.error(f"--width {args.width} is negative")
    try:
        if args.file == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(args.file, "rb") as f:
                data = f.read()
        text = _ffi.lib().diagnose(data, args.width, args.full)
    except (OSError, ViacodecError) as e:
        name = "standard input" if args.file == "-" else args.file
        print(f"python -m viacodec: {name}: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
