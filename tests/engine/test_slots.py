"""The worker's run slots (engine/_slots.py): a waiting run gives its slot back, branches of
one run share one slot, and no permit is lost however the waits interleave or end."""

import asyncio

import pytest

from engine._slots import RunSlots, waiting


def _free(slots: RunSlots) -> int:
    return slots._semaphore()._value  # asyncio has no getter for the free permits


def test_a_waiting_run_lets_another_work_and_takes_its_slot_back() -> None:
    async def scenario() -> list[str]:
        slots = RunSlots(1)
        seen: list[str] = []
        answered = asyncio.Event()

        async def waiter() -> None:
            async with slots.run():
                seen.append("waiter works")
                async with waiting():
                    await answered.wait()
                seen.append("waiter goes on")

        async def worker() -> None:
            async with slots.run():
                seen.append("other works")
                answered.set()

        await asyncio.gather(waiter(), worker())
        assert _free(slots) == 1
        return seen

    assert asyncio.run(scenario()) == ["waiter works", "other works", "waiter goes on"]


def test_branches_queueing_for_their_runs_slot_at_once_lose_no_permit() -> None:
    """Branch A's wait ends while the slots are busy; branch B's short wait comes and goes
    meanwhile: both queue to take the run's slot back; one permit is the run's, the other
    goes straight back."""

    async def scenario() -> int:
        slots = RunSlots(2)
        release = asyncio.Event()

        async def busy() -> None:
            async with slots.run():
                await release.wait()

        async def branching() -> list[asyncio.Task[None]]:
            async with slots.run():
                # One takes the free slot; the other gets this run's while branch A waits.
                others = [asyncio.create_task(busy()) for _ in range(2)]
                await asyncio.sleep(0.01)

                async def branch_a() -> None:
                    async with waiting():
                        await asyncio.sleep(0.02)
                    # ends its wait with every slot busy: queues to take one back

                async def branch_b() -> None:
                    await asyncio.sleep(0.05)  # A is queued by now
                    async with waiting():
                        await asyncio.sleep(0)
                    # queues too

                async def free_later() -> None:
                    await asyncio.sleep(0.1)
                    release.set()

                await asyncio.gather(branch_a(), branch_b(), free_later())
            return others

        others = await asyncio.wait_for(branching(), timeout=5)
        await asyncio.gather(*others)
        return _free(slots)

    assert asyncio.run(scenario()) == 2


def test_a_cancelled_wait_does_not_queue_for_a_slot() -> None:
    async def scenario() -> int:
        slots = RunSlots(1)
        started = asyncio.Event()

        async def parked() -> None:
            async with slots.run(), waiting():
                started.set()
                await asyncio.sleep(3600)

        async def holder() -> None:
            await started.wait()
            async with slots.run():  # holds the only slot while the parked run is cancelled
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

        task = asyncio.create_task(parked())
        await asyncio.wait_for(holder(), timeout=2)  # no deadlock: the cancelled run ended
        return _free(slots)

    assert asyncio.run(scenario()) == 1
