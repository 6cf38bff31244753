"""Error types. Each failure kind has its own class; the CLI turns any of them into one line."""


class EmcodecError(Exception):
    """Base of every error emcodec raises on purpose (bad input, bad file, bad option)."""


class InputError(EmcodecError):
    """The input movie cannot be used (missing, unsupported format, RGB, 4-D, no frames)."""


class ContainerError(EmcodecError):
    """A .tcs file is not one, is truncated, corrupt, or of an unsupported version."""


class ChecksumError(ContainerError):
    """A stored checksum does not match: the file was damaged after it was written."""


class VersionError(ContainerError):
    """The file was written by a newer emcodec with a format version this one cannot read."""


class OutputError(EmcodecError):
    """The output cannot be written (exists without --force, unwritable, same as the input)."""


class MissingDependencyError(EmcodecError):
    """An optional part (the torch decoding stack) is not installed."""


class WeightsError(EmcodecError):
    """Shipped or user weights are missing, do not match their sha256, or do not fit the model."""
