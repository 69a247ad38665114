"""The local playground: synthetic patients, a loader, a development signing key, and an
EHR-like page (``python -m sandbox.web``) that fires hooks and shows cards."""
