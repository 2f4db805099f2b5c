"""Acting on verdicts (DESIGN steps 8-9): modes, Argo CD writes, deferred syncs, expiring allowances, exactly once.

Nothing here can delete or prune: the sync body is built in one place with `prune: false`.
"""
