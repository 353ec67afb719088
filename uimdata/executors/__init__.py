"""Executors run stages; stages never import them. The contract is ``executors.base.Executor``."""
