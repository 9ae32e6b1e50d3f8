"""Mini-apps: flows published as pages of their own (/apps/<org>/<slug>), REST endpoints and
embeds, with app keys, rate limits per visitor and per app, and visitors as callers."""
