"""The clinical knowledge of ``fhir_profiles/``: loaded and validated once, its thresholds typed,
and the human-readable rules page rendered from what was loaded."""
