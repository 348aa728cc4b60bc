"""Command-line interface: parse arguments, call `rollout.app`, render, map errors to exit codes."""
