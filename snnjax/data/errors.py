"""Errors raised by `snnjax.data`.

Every message names the offending input and says how to fix it, because data
problems are usually found by someone running a config far from the code.
"""

from __future__ import annotations


class DatasetError(Exception):
    """Base class of every error raised by `snnjax.data`."""


class UnknownDatasetError(DatasetError, ValueError):
    """The dataset name is not one `load_dataset` knows."""


class InvalidDatasetOptionError(DatasetError, ValueError):
    """An option passed to `load_dataset` is unknown or has a bad value."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The dataset files are not on disk and could not be downloaded/prepared."""


class DatasetCorruptError(DatasetError, ValueError):
    """The dataset files are on disk but their content is wrong (md5, format)."""
