"""Pure decision logic: what to do with each node, in which order, under which safety budgets.

Nothing in this package performs I/O, reads a clock or imports a client library (import-linter
enforces it); time and observations come in as arguments, so every decision can be replayed.
"""
