"""The local playground: synthetic patients, a loader, and (later) an EHR-like page."""
