"""Use cases: what each command does, as library calls (the CLI is a thin client of these)."""
