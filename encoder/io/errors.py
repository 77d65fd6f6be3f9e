"""The project's exception hierarchy: errors a user can act on, turned into one line by the CLI.

Imports nothing heavy: every command's error handling loads this module before any work starts."""


class SeqaeError(Exception):
    """Base of every error the command line reports as ``error: <message>`` with exit status 1."""


class InputError(SeqaeError, ValueError):
    """Bad input data: a missing file or column, an unusable value, an existing output."""


class ArtifactError(SeqaeError, ValueError):
    """A saved encoder or classifier that cannot be used: tampered, corrupted, too new, mismatched."""


class NotFitted(SeqaeError, ValueError, AttributeError):
    """An estimator used before ``fit`` (or ``load``); the bases of scikit-learn's ``NotFittedError``,
    without importing scikit-learn."""


class SeqaeWarning(UserWarning):
    """Something the user should know that does not stop the command (printed by the CLI as
    ``warning: <message>``)."""


class TruncationWarning(SeqaeWarning):
    """Sequences longer than the encoder's ``max_len`` lost their oldest events."""


class SlowPathWarning(SeqaeWarning):
    """The work asked for takes a path much slower than one the user could choose instead."""
