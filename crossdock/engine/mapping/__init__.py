"""The map language: compiling `map` blocks and the fixed function library they may call."""
