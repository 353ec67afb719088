"""One error type for everything a user can get wrong.

Messages follow one shape: what was expected, what was received, and how to fix it.
The CLI prints ``UimError`` as a single line and exits with status 2.
"""

from __future__ import annotations


class UimError(Exception):
    """A user-facing error: expected X, got Y, fix with Z."""

    def __init__(self, what: str, *, expected: str | None = None, got: str | None = None,
                 hint: str | None = None) -> None:
        parts = [what]
        if expected is not None:
            parts.append(f"expected {expected}")
        if got is not None:
            parts.append(f"got {got}")
        msg = "; ".join(parts)
        if hint:
            msg += f" (hint: {hint})"
        super().__init__(msg)
