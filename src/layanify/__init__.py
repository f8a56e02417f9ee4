"""Layanify WhatsApp: a self-hostable WhatsApp Business (Cloud API) inbox."""

__version__ = "0.1.0"
