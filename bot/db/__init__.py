"""Storage: engine and sessions (``engine``), tables (``models``), migrations (``migrate``).

Nothing is imported here: the start-up migration check (``python -m bot.db.migrate``) needs neither
the engine nor the tables (~0.2 s of imports) unless the database is behind.
"""
