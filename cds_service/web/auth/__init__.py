"""Authentication of CDS Clients: trusted issuers, their keys, JWT verification, replay guard."""
