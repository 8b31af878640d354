"""Checked, atomic file downloads (standard library only).

A download is written to `<dest>.<pid>.part` and renamed onto `dest` only after
its md5 matched: an interrupted or wrong download never leaves a file at
`dest` that a later run would trust. The pid keeps concurrent processes (e.g.
several hosts on a shared disk) from writing into one another's partial file.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import urllib.request

from snnjax.data.errors import DatasetCorruptError

_CHUNK_BYTES = 1 << 20


def md5_of_file(path: str | os.PathLike[str]) -> str:
    """Hex md5 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(path: str | os.PathLike[str], expected_md5: str) -> None:
    """Raise DatasetCorruptError if the file's md5 is not `expected_md5`."""
    actual = md5_of_file(path)
    if actual != expected_md5:
        raise DatasetCorruptError(
            f"{path} has md5 {actual} but {expected_md5} was expected: the file is incomplete "
            f"or not the official archive. Fix: delete {path} and download it again."
        )


def download_file(
    url: str, dest: str | os.PathLike[str], expected_md5: str, *, timeout_s: float = 60.0
) -> pathlib.Path:
    """Download `url` to `dest` atomically and check its md5.

    Raises:
      OSError (urllib.error.URLError included) if the transfer fails; nothing is
        left at `dest`.
      DatasetCorruptError if the downloaded bytes have the wrong md5.
    """
    dest = pathlib.Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f"{dest.name}.{os.getpid()}.part")
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(part, "wb") as out:
            for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != expected_md5:
            raise DatasetCorruptError(
                f"Downloaded {url} has md5 {actual} but {expected_md5} was expected (a proxy or "
                f"mirror served different bytes). Fix: retry, or download the archive by hand, "
                f"check its md5 and pass its path as data_dir."
            )
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest
