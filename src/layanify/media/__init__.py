"""Media files: inbound media downloaded into our storage, outbound media uploaded through the API."""
