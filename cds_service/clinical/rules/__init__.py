"""The recommendations: pure functions from ``PatientFacts`` and the knowledge to findings,
one module per hook."""
