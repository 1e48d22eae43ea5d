"""Releases: the release ledger, /rollback, deploy freezes and the deploy webhook's ledger entries."""
