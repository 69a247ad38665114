"""A hook call from request to cards: wire models, the two services, the pipeline of named steps
and what surrounds it (per-key tolerance of malformed data, alert fatigue, recording cards)."""
