"""Messaging domain."""
