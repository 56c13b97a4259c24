"""The implementations of the `crossdock` subcommands, one module each."""
