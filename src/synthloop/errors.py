"""One error tree. Every message says what went wrong *and* what to do next.

The CLI turns any `SynthloopError` into one line on stderr (exit code 2 for bad input, 1 otherwise);
`SYNTHLOOP_RAISE_ERRORS=1` re-raises for debugging.
"""

from __future__ import annotations


class SynthloopError(Exception):
    """Base of every error synthloop raises on purpose."""

    exit_code = 1


class RecipeError(SynthloopError):
    """The recipe (or a CLI flag that feeds it) is invalid. Nothing was started."""

    exit_code = 2


class InputError(SynthloopError):
    """A user-supplied file (data, golden set, eval set) cannot be read."""

    exit_code = 2


class BackendError(SynthloopError):
    """A model backend failed. `retryable` tells the client whether to try again."""

    retryable = False


class RateLimited(BackendError):
    retryable = True


class BackendTimeout(BackendError):
    retryable = True


class BackendUnavailable(BackendError):
    """Connection refused / reset, 5xx: worth retrying."""

    retryable = True


class BadResponse(BackendError):
    """The server answered, but not with something we can use (4xx, malformed JSON)."""


class BudgetExceeded(SynthloopError):
    """The cost or token cap in the recipe was reached. Work done so far is kept."""


class VerifierError(SynthloopError):
    pass


class StorageError(SynthloopError):
    pass


class MissingDependency(SynthloopError):
    """An optional package is needed. The message names the `pip install` that fixes it."""

    exit_code = 2

    @classmethod
    def for_package(cls, package: str, feature: str, extra: str | None = None) -> "MissingDependency":
        hint = f"pip install 'synthloop[{extra}]'" if extra else f"pip install {package}"
        return cls(f"{feature} needs the package `{package}`: install it with `{hint}`")


__all__ = [
    "BackendError",
    "BackendTimeout",
    "BackendUnavailable",
    "BadResponse",
    "BudgetExceeded",
    "InputError",
    "MissingDependency",
    "RateLimited",
    "RecipeError",
    "StorageError",
    "SynthloopError",
    "VerifierError",
]
