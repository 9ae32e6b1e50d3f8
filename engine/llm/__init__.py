"""LLM providers: the one call path for every model (`_providers`), the model catalogue
(`models.json`), and the deterministic fake provider for tests and the offline demo (a real
HTTP server speaking the OpenAI and Anthropic wire formats)."""

from ._catalogue import ModelInfo, model_info
from ._catalogue import models as model_catalogue
from ._fake import FakeLLMServer, FakeScript
from ._providers import PROVIDERS

__all__ = ["PROVIDERS", "FakeLLMServer", "FakeScript", "ModelInfo", "model_catalogue", "model_info"]
