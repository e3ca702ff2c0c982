"""Views of the listening app: listener pages and API, token-guarded audio, staff pages."""
