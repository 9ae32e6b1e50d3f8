"""Cost control and billing: usage rollups, budgets, alerts, the kill switch, Stripe."""
