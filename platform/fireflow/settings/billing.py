"""Stripe: the API key, the webhook signing secret, and (for the fake Stripe that tests and
the offline demo use) the API's base address. Without a key, billing through Stripe is off:
costs, budgets and the kill switch work all the same."""

from .env import env_int, env_str

STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = env_str("STRIPE_API_BASE", "")  # empty: api.stripe.com
# The billing meter LLM usage is reported to (its value: micro-dollars of LLM spend).
STRIPE_METER_EVENT = env_str("STRIPE_METER_EVENT", "fireflow_llm_usage")
# Usage is reported per window of this many minutes once the window has closed.
STRIPE_METER_WINDOW_MINUTES = env_int("STRIPE_METER_WINDOW_MINUTES", 60)
