"""The store: chronoforce's own state (shipments, parcels, events, exceptions, outbox, watermarks).

SQLite by default, PostgreSQL with the same code. Rows are the source of truth; queues only
carry their ids. Unique constraints, not application checks, make double work impossible.
"""
