"""shop: a small shop backend (orders, billing, user profiles) served by plain handler functions."""

__version__ = "1.4.2"
