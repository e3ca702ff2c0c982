"""Exceptions a user can act on. Each message names the file, the value and the fix.

The CLI maps every `HafmError` to exit code 2 and one line on stderr.
"""


class HafmError(Exception):
    """Base of every error caused by input or configuration, not by a bug."""


class ConfigError(HafmError):
    """A setting or environment variable has an invalid value."""


class MissingWeightsError(HafmError):
    """A model weights file or folder is not where it is expected."""


class AudioError(HafmError):
    """Audio that cannot be used: the message names the file and what is wrong."""


class AudioDecodeError(AudioError):
    """The file cannot be read or decoded (missing, corrupt, unsupported)."""


class TruncatedAudioError(AudioDecodeError):
    """The file's sample data ends before its header (or container) says: a partial copy."""


class InvalidAudioError(AudioError):
    """The samples are unusable: NaN/Inf, silent, too short, bad channel layout."""


class CheckpointError(HafmError):
    """A cascade checkpoint is missing, partial, corrupt or mismatched."""


class WeightsError(HafmError):
    """A weights file or folder is present but unusable: truncated, corrupt, wrong format."""


class DatasetError(HafmError):
    """A dataset path holds no usable tracks or a manifest is malformed."""


class OutputPathError(HafmError):
    """An output path cannot be written: it is a file where a folder is needed, sits under a
    file, is not writable, or exists and `--overwrite` was not given."""
