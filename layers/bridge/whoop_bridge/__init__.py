"""WHOOP Bridge: the code every handler shares.

Kept import-free on purpose: the webhook intake must cold-start within WHOOP's
1-second budget, so each handler imports only the modules it uses.
"""

__version__ = "0.1.0"  # the release; pyproject.toml says the same (a unit test holds them together)
