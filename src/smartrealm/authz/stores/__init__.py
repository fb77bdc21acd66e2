"""The authorization server's stores: SQL (SQLite, PostgreSQL) and in memory."""
