"""Crypto domain."""
