"""Privacy: export and erasure of a contact, opt-out keywords, and retention of old data."""
