"""The server-rendered web inbox: Jinja2 templates, htmx, Server-Sent Events; Bahasa Indonesia and English."""
