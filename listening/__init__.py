"""Listening tests: blinded preference and rating studies for crowdsourced listeners."""
