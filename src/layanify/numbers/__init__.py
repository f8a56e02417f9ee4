"""Numbers domain."""
