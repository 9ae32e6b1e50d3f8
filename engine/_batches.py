"""Group commit: requests made while one batch is written go together in the next one.

The engine's hot statements (step checkpoints, run events) are each one small write per
request; many runs on one event loop make them at once, and one statement for all of them
costs little more than one for each."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any


class Batches[Item, Result]:
    """Requests made while a batch is being written wait for the next batch, which takes
    them all (up to `most`); a request made when nothing is in flight is written on the next
    turn of the event loop, with whatever else was asked for in this one.

    A batch whose write fails is written again item by item, so that a request that cannot
    be written fails alone, with an error of its own."""

    def __init__(
        self,
        write: Callable[[list[Item]], Awaitable[Sequence[Result | BaseException]]],
        most: int = 500,
    ) -> None:
        self._write = write
        self._most = most
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._drain: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._drain is None or self._drain.done():
            self._drain = asyncio.ensure_future(self._write_all())
        return await future

    async def _write_all(self) -> None:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self._most], self._waiting[self._most :]
                try:
                    results = await self._write([item for item, _ in batch])
                except Exception as exc:
                    if len(batch) == 1:
                        results = [exc]
                    else:
                        results = [await self._write_alone(item) for item, _ in batch]
                _settle(batch, results)
                batch = []
        except BaseException as exc:  # nobody is left waiting for an answer that never comes
            for _, future in [*batch, *self._waiting]:
                if future.done():
                    continue
                if isinstance(exc, Exception):
                    future.set_exception(exc)
                else:  # cancelled (the loop is closing): so are the requests
                    future.cancel()
            self._waiting = []
            raise

    async def _write_alone(self, item: Item) -> Result | BaseException:
        try:
            return (await self._write([item]))[0]
        except Exception as exc:
            return exc


def _settle[Result](
    batch: "list[tuple[Any, asyncio.Future[Result]]]", results: Sequence[Result | BaseException]
) -> None:
    for (_, future), result in zip(batch, results, strict=True):
        if future.done():  # its caller was cancelled: the write happened anyway
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
