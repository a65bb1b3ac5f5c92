"""Where `make bench-render` writes its renders: memory (a tmpfs) when the machine has one with room.

On this project's 2-core VM, creating the same ~2,400 files on ext4 took 0.25 s to 2 s from
one minute to the next (ext4's allocator re-reads inodes that other jobs deleted moments
before), against 0.03 s on tmpfs: a latency of the disk that the floor the bench compares
with, which writes nothing, never pays (docs/performance.md).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MOUNTS = Path("/proc/mounts")
MEMORY_FS = Path("/dev/shm")
MIN_FREE = 512 * 2**20
"""A render of 200/80 takes ~70 MB; keep well clear of a small /dev/shm (Docker's: 64 MB)."""


def memory_fs() -> Path | None:
    """MEMORY_FS if it is a tmpfs this user can write to, with MIN_FREE bytes free, else None
    (use the disk)."""
    try:
        mounted = {fields[1]: fields[2] for line in MOUNTS.read_text().splitlines() if len(fields := line.split()) >= 3}
        if (mounted.get(str(MEMORY_FS)) == "tmpfs" and os.access(MEMORY_FS, os.W_OK | os.X_OK)
                and shutil.disk_usage(MEMORY_FS).free >= MIN_FREE):
            return MEMORY_FS
    except OSError:  # no /proc (not Linux), or MEMORY_FS gone
        pass
    return None
