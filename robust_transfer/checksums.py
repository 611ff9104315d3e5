"""SHA-256 checksums of cached files: one place for the tiny encoder, the converted e5 model
and the perturbed-split caches, each of which is verified before it is used."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def directory_checksums(directory: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """{file name: sha256} of every file directly in `directory`, but those named in `skip`."""
    return {p.name: file_sha256(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name not in skip}


def first_mismatch(directory: Path, expected: dict[str, str]) -> str | None:
    """None if every file has its expected checksum, else what is wrong with the first that has not."""
    for name, digest in expected.items():
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        if file_sha256(path) != digest:
            return f"{name} does not match its checksum (truncated or altered)"
    return None
