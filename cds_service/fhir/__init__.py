"""The patient's data: gathered from prefetch and the FHIR server, and small readers of FHIR JSON."""
