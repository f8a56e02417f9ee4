"""The pure Cloud API layer: wire formats, signatures, Graph client. No database, no web."""
