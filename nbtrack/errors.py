"""Errors raised by nbtrack. Every one derives from `NbtrackError`."""

from __future__ import annotations


class NbtrackError(Exception):
    """Base class of every error nbtrack raises on purpose."""


class StoreError(NbtrackError):
    """The run store cannot be opened, written or read."""


class RunNotFoundError(StoreError, LookupError):
    """No run matches the id or name given."""


class ConfigError(NbtrackError):
    """A config change that would make the run's record lie about how it was trained."""


class RunFinishedError(NbtrackError):
    """An operation that needs a running run was called on a finished one."""


class NbtrackWarning(UserWarning):
    """Something went wrong inside nbtrack; training goes on."""
