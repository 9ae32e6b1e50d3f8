"""The model catalogue (models.json beside this file): context sizes and prices, as data."""

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelInfo:
    provider: str
    model: str
    context: int
    input_per_m: float
    output_per_m: float
    cached_per_m: float

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        """USD for one call (cached input tokens are billed at the cached rate)."""
        fresh = max(input_tokens - cached_tokens, 0)
        total = (
            fresh * self.input_per_m
            + cached_tokens * self.cached_per_m
            + output_tokens * self.output_per_m
        )
        return round(total / 1_000_000, 8)

    def cost_micros(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> int:
        """The same cost in micro-dollars, rounded half up: a price per million tokens is
        exactly micro-dollars per token."""
        fresh = max(input_tokens - cached_tokens, 0)
        total = (
            Decimal(fresh) * Decimal(str(self.input_per_m))
            + Decimal(cached_tokens) * Decimal(str(self.cached_per_m))
            + Decimal(output_tokens) * Decimal(str(self.output_per_m))
        )
        return int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@cache
def models() -> dict[tuple[str, str], ModelInfo]:
    data: dict[str, Any] = json.loads((Path(__file__).with_name("models.json")).read_text())
    return {
        (m["provider"], m["model"]): ModelInfo(
            m["provider"],
            m["model"],
            int(m["context"]),
            float(m["input"]),
            float(m["output"]),
            float(m["cached"]),
        )
        for m in data["models"]
    }


def model_info(provider: str, model: str) -> ModelInfo | None:
    return models().get((provider, model))
