"""crossdock: a config-driven integration engine for distributors."""

__version__ = "0.1.0"
