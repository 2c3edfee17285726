"""The two error types alfaviz raises on purpose. Importing this module loads no torch."""

from __future__ import annotations

__all__ = ["AlfavizInputError", "RunStoreError"]


class AlfavizInputError(ValueError):
    """Raised when a user passes input alfaviz cannot work with.

    The message always names the offending argument and says how to fix it.
    """


class RunStoreError(ValueError):
    """A run directory is missing, incomplete, corrupt, or would be overwritten.

    The message names the path involved and says what is wrong with it.
    """
