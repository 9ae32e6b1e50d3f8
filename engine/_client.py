"""What the web process may do with runs: built on DBOSClient (never a launched DBOS).

The client is created lazily and does not retry lost connections, so a database outage
fails a request at once instead of hanging it."""

import threading

from dbos import DBOSClient

from ._durable import RUN_QUEUE


class EngineClient:
    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._client: DBOSClient | None = None
        self._lock = threading.Lock()

    def _dbos(self) -> DBOSClient:
        with self._lock:
            if self._client is None:
                self._client = DBOSClient(
                    system_database_url=self._url, lazy=True, retry_connection_errors=False
                )
            return self._client

    def cancel(self, run_id: str) -> None:
        """Cancel a run and its child runs (ExecuteFlow, Map: ids `<run>:...`)."""
        client = self._dbos()
        client.cancel_workflow(run_id, cancel_children=True)
        children = client.list_workflows(
            workflow_id_prefix=f"{run_id}:",
            status=["PENDING", "ENQUEUED", "DELAYED"],
            load_input=False,
            load_output=False,
        )
        for child in children:
            client.cancel_workflow(child.workflow_id, cancel_children=True)

    def resume(self, run_id: str) -> None:
        self._dbos().resume_workflow(run_id, queue_name=RUN_QUEUE)

    def fork(self, run_id: str, start_step: int) -> str:
        """A new run that replays `run_id` up to `start_step` and runs the rest again."""
        handle = self._dbos().fork_workflow(run_id, start_step, queue_name=RUN_QUEUE)
        return str(handle.get_workflow_id())

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.destroy()
                self._client = None
