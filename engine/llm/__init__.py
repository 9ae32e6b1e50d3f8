"""LLM providers. Public here: the deterministic fake provider for tests and the offline
demo (a real HTTP server speaking the OpenAI and Anthropic wire formats)."""

from ._fake import FakeLLMServer, FakeScript

__all__ = ["FakeLLMServer", "FakeScript"]
