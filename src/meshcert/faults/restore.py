"""The one rule every fault follows on exit: restore always, never mask the test's own failure.

Each fault context manager used to carry the same try/except/finally: run the block, then revert;
if the revert fails, raise when the block succeeded, or attach the revert failure as a note to
the block's exception when it did not (a failed test must still report *its* failure first).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from meshcert.errors import FaultError, MeshcertError


@contextlib.contextmanager
def restoring(what: str, restore: Callable[[], None]) -> Iterator[None]:
    """Run the block, then ``restore()`` whatever happened.

    ``restore`` reverts and verifies by reading state back, raising a MeshcertError when either
    fails. Without a block error that becomes ``FaultError("reverting <what> failed: ...")``;
    with one, a note ``meshcert: reverting <what> ALSO failed: ...`` on the block's exception.
    """
    try:
        yield
    except BaseException as body_error:
        try:
            restore()
        except MeshcertError as e:
            body_error.add_note(f"meshcert: reverting {what} ALSO failed: {e!r}")
        raise
    try:
        restore()
    except MeshcertError as e:
        raise FaultError(f"reverting {what} failed: {e}") from e
