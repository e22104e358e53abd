"""Averaging updates bigger than memory: run ``python offload_average.py``.

A server averages the updates of N clients of a model larger than its
memory budget (FedAvg with FLARE's ``enable_tensor_disk_offload`` in
mind). A clients process (this file again, with the argument ``clients``)
holds N updates and sends each by reference; the server decodes each with
``Host.loads(msg, offload=DIR)``: every update lands in a safetensors file
in DIR as it downloads, and comes back as read-only numpy.memmap arrays
over it. The server then averages tensor by tensor, releasing each
update's tensor as soon as it is added, so its memory holds one tensor
and the sum, never a model; the average goes to a safetensors file too.
Each update's file goes with its last array.

The updates are made from seeds, so the server checks the average bit
for bit by making them again, one tensor at a time. It prints its peak
memory growth (VmHWM from /proc) against the budget and fails above it.

Options: --clients N --size-mib S (the model) --tensors T --budget-mib B
--dir DIR (the offload directory: a disk, not a tmpfs).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
from typing import BinaryIO, Dict, List

import numpy as np

import viacodec

MiB = 1 << 20


def send(f: BinaryIO, msg: bytes) -> None:
    f.write(struct.pack(">Q", len(msg)) + msg)
    f.flush()


def receive(f: BinaryIO) -> bytes:
    n = struct.unpack(">Q", f.read(8))[0]
    return f.read(n)


def tensor(client: int, t: int, n: int) -> np.ndarray:
    """Tensor t of client's update: float32, from a seed."""
    return np.random.default_rng([client, t]).standard_normal(n, dtype=np.float32)


def clients(args: argparse.Namespace) -> None:
    """The clients: N Hosts, one update each, sent by reference on stdout;
    ends when the server has downloaded them all."""
    n = args.size_mib * MiB // 4 // args.tensors
    hosts, txs = [], []
    try:
        for c in range(args.clients):
            host = viacodec.Host(name=f"client-{c}")
            hosts.append(host)
            update = {f"layer{t}.w": tensor(c, t, n) for t in range(args.tensors)}
            msg, tx = host.dumps({"client": c, "update": update}, receivers=1)
            txs.append(tx)
            send(sys.stdout.buffer, msg)
        for tx in txs:
            tx.wait(timeout=600)
    finally:
        for h in hosts:
            h.close()


def vm_hwm() -> int:
    """This process's peak resident memory, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def reset_hwm() -> None:
    """Starts VmHWM afresh from the current resident memory."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def write_safetensors(path: str, names: List[str], shapes: Dict[str, tuple]) -> Dict[str, np.memmap]:
    """Creates a safetensors file of float32 tensors and returns a
    writable memmap of each: the average fills it tensor by tensor."""
    header, off = {}, 0
    for name in names:
        n = int(np.prod(shapes[name])) * 4
        header[name] = {"dtype": "F32", "shape": list(shapes[name]), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        f.truncate(8 + len(h) + off)
    base = 8 + len(h)
    return {name: np.memmap(path, np.float32, "r+", base + header[name]["data_offsets"][0], shapes[name]) for name in names}


def server(args: argparse.Namespace) -> int:
    directory = args.dir or tempfile.mkdtemp(prefix="offload-average-")
    proc = subprocess.Popen([sys.executable, __file__, "clients", *sys.argv[1:]], stdout=subprocess.PIPE)
    base = None
    with viacodec.Host(name="server") as host:
        # Imports, the Host and the first call are the baseline, not the updates.
        updates = []
        for c in range(args.clients):
            msg = receive(proc.stdout)
            if base is None:
                reset_hwm()
                base = vm_hwm()
            updates.append(host.loads(msg, offload=directory, timeout=600)["update"])
        names = sorted(updates[0])
        shapes = {name: updates[0][name].shape for name in names}
        out = write_safetensors(os.path.join(directory, "average.safetensors"), names, shapes)
        for name in names:
            acc = np.zeros(shapes[name], np.float32)
            for u in updates:
                acc += u.pop(name)  # read from its file, then released: its pages go
            acc /= np.float32(len(updates))
            out[name][:] = acc
            out[name].flush()
            del out[name]
        del updates
        peak_abs = vm_hwm()
        peak = peak_abs - base
        # Check the average bit for bit, making the updates again.
        n = args.size_mib * MiB // 4 // args.tensors
        avg = os.path.join(directory, "average.safetensors")
        with open(avg, "rb") as f:
            hlen = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(hlen))
        for name in names:
            t = int(name[len("layer") : -len(".w")])
            want = np.zeros(n, np.float32)
            for c in range(args.clients):
                want += tensor(c, t, n)
            want /= np.float32(args.clients)
            got = np.memmap(avg, np.float32, "r", 8 + hlen + header[name]["data_offsets"][0], (n,))
            if got.tobytes() != want.tobytes():
                print(f"server: {name} differs from the average", file=sys.stderr)
                return 1
            del got
        os.remove(avg)
    if proc.wait(timeout=600) != 0:
        print("server: the clients failed", file=sys.stderr)
        return 1
    left = [f for f in os.listdir(directory)]
    if not args.dir:
        os.rmdir(directory)
    total = args.clients * args.size_mib
    print(f"server: averaged {args.clients} updates of {args.size_mib} MiB ({total} MiB) with peak memory {peak_abs / MiB:.0f} MiB, growth {peak / MiB:.0f} MiB (budget {args.budget_mib} MiB); files left: {len(left)}")
    return 0 if peak <= args.budget_mib * MiB and not left else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("role", nargs="?", default="server", choices=["server", "clients"])
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--size-mib", type=int, default=128)
    p.add_argument("--tensors", type=int, default=16)
    p.add_argument("--budget-mib", type=int, default=96)
    p.add_argument("--dir", default="")
    args = p.parse_args()
    if args.role == "clients":
        clients(args)
        return 0
    return server(args)


if __name__ == "__main__":
    sys.exit(main())
