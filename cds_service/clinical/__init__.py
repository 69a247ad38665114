"""The pure clinical core: facts from FHIR JSON, rules to findings, findings to cards.

No web framework, HTTP client or database here; the clock is injected (``today``)."""
