"""Runners: the backends that carry out one agent's step each."""
