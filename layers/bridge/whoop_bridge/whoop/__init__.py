"""Clients for WHOOP's APIs and the webhook signatures."""
