"""How many runs of a worker work at once, apart from those that wait.

DBOS's queue hands a worker up to `concurrency + parked` runs (WorkerConfig); `concurrency`
of them may work at once. A run that waits (for a person, for its child runs, in a Delay)
gives its slot back while it waits and takes one again before it goes on, so thousands of
runs can wait on one worker holding no thread, no connection and no slot each.

A run's branches share its slot: the first branch to wait gives it back, the last one to
stop waiting takes it again (a branch still working meanwhile runs on: the limit is soft by
at most the runs that wait in one branch and work in another)."""

import asyncio
import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class _RunSlot:
    def __init__(self, semaphore: asyncio.Semaphore, owner: "RunSlots") -> None:
        self._semaphore = semaphore
        self._held = False
        self.waiters = 0
        self.owner = owner

    async def take(self) -> None:
        """Hold the run's one permit again. Two branches may queue for it at once (one ends a
        wait while another's short wait comes and goes): the second permit goes straight
        back, as does one taken while a branch began to wait meanwhile."""
        await self._semaphore.acquire()
        if self._held or self.waiters > 0:
            self._semaphore.release()
            return
        self._held = True

    def give_back(self) -> None:
        if self._held:
            self._held = False
            self._semaphore.release()


_current: contextvars.ContextVar[_RunSlot | None] = contextvars.ContextVar(
    "fireflow_run_slot", default=None
)


class RunSlots:
    """The worker's slots for working runs (one semaphore per event loop)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._semaphores: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}
        # Runs that wait now (their slot given back): what the worker may take on besides
        # `limit` working ones; and runs that have started here, ever. The worker's
        # dispatcher reads both from its own thread.
        self.parked = 0
        self.entered = 0

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.limit)
        return semaphore

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """Around a run's work: a slot, held except while the run waits."""
        slot = _RunSlot(self._semaphore(), self)
        self.entered += 1
        token = _current.set(slot)
        try:
            await slot.take()
            yield
        finally:
            slot.give_back()
            _current.reset(token)


SLOTS = RunSlots(50)


@asynccontextmanager
async def waiting() -> AsyncIterator[None]:
    """Around a wait of the current run: its slot goes to another run meanwhile."""
    slot = _current.get()
    if slot is None:  # not inside a run (a node called directly)
        yield
        return
    slot.waiters += 1
    if slot.waiters == 1:
        slot.give_back()
        slot.owner.parked += 1
    try:
        yield
    except BaseException:
        # Failing or cancelled (a kill switch stopping thousands of parked runs): the run
        # ends, so it does not queue for a slot only to give it back.
        slot.waiters -= 1
        if slot.waiters == 0:
            slot.owner.parked -= 1
        raise
    slot.waiters -= 1
    if slot.waiters == 0:
        slot.owner.parked -= 1  # working again (or queued for a slot: wanting to)
        await slot.take()
