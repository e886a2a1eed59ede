"""Faults as context managers that always revert and prove the revert by reading state back (C1).

``with toxic(client, "api", Toxic(Latency(100))): ...`` adds the toxic, and on exit — normal or
exceptional — deletes it and then lists the proxy's toxics to prove it is gone.
``with proxy_down(client, "api"): ...`` disables the proxy (dropping its connections) and
re-enables it, then reads the proxy back to prove it is enabled again.

A failed revert raises `FaultError`. When the body itself raised, the body's exception is the
one that propagates (it is the test's real failure) and the revert failure is attached to it as
a note — never the other way round, and never silently.

Not here: deciding what "steady state" means (C2) — that belongs to the experiment runner.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from meshcert.errors import FaultError
from meshcert.faults.restore import restoring
from meshcert.faults.toxiproxy import Proxy, Toxic, ToxiproxyClient


@contextlib.contextmanager
def toxic(client: ToxiproxyClient, proxy: str, spec: Toxic) -> Iterator[Toxic]:
    """Add ``spec`` to ``proxy`` for the duration of the block; yields the toxic as the server has it."""
    added = client.add_toxic(proxy, spec)
    what = f"toxic {added.key!r} ({added.type}, {added.stream.value}) on proxy {proxy!r}"

    def undo() -> None:
        client.delete_toxic(proxy, added.key)

    def verify() -> None:
        left = [t.key for t in client.toxics(proxy)]
        if added.key in left:
            raise FaultError(f"{what} is still listed after DELETE; toxics now: {left}")

    def restore() -> None:
        undo()
        verify()

    with restoring(what, restore):
        yield added


@contextlib.contextmanager
def proxy_down(client: ToxiproxyClient, proxy: str) -> Iterator[Proxy]:
    """Disable ``proxy`` (no listener, open connections closed) for the block; re-enable after.

    Yields the proxy as reported while down. Refuses to start if it is already disabled, since
    "restore" would then mean something else than "as before".
    """
    before = client.get_proxy(proxy)
    if not before.enabled:
        raise FaultError(f"proxy {proxy!r} is already disabled; refusing to take it down and 'restore' it")
    down = client.disable_proxy(proxy)
    if down.enabled:
        client.enable_proxy(proxy)
        raise FaultError(f"proxy {proxy!r} still reports enabled after disabling it")
    what = f"proxy {proxy!r} down"

    def undo() -> None:
        client.enable_proxy(proxy)

    def verify() -> None:
        now = client.get_proxy(proxy)
        if not now.enabled:
            raise FaultError(f"proxy {proxy!r} reports enabled=false after re-enabling it")
        if now.listen != before.listen or now.upstream != before.upstream:
            raise FaultError(
                f"proxy {proxy!r} came back as {now.listen} -> {now.upstream}, "
                f"was {before.listen} -> {before.upstream}"
            )

    def restore() -> None:
        undo()
        verify()

    with restoring(what, restore):
        yield down
