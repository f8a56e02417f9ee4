"""Automation per number: business hours, auto-replies, read receipts, the typing indicator, reply delay."""
