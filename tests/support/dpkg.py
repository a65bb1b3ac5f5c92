"""A dpkg database of installed packages for a test host, read by the real dpkg-query through
`DPKG_ADMINDIR` (which dpkg-query honours): the kernel packages a host's preflight looks at."""

from __future__ import annotations

from pathlib import Path

# An Ubuntu server's kernel: the GA metapackage on one kernel.
SERVER_KERNEL = {"linux-image-generic": "linux-image-6.8.0-45-generic, linux-firmware", "linux-image-6.8.0-45-generic": ""}


def admindir(folder: Path, packages: dict[str, str]) -> Path:
    """`folder` holding a `status` file with each package (name -> Depends) installed."""
    stanzas = [f"Package: {name}\nStatus: install ok installed\nMaintainer: test\nArchitecture: amd64\nVersion: 1\n"
               f"Description: stand-in\n" + (f"Depends: {deps}\n" if deps else "") for name, deps in packages.items()]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "status").write_text("\n".join(stanzas))
    return folder
