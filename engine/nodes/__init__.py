"""The built-in node library. Importing this package registers every node type."""

from . import _agent, _card, _core, _data, _flow, _http, _human, _llm, _prompting

__all__ = ["_agent", "_card", "_core", "_data", "_flow", "_http", "_human", "_llm", "_prompting"]
