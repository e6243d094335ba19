"""Command-line interface: argument parsing only; every command delegates to a subsystem."""
