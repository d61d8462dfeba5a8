"""The prediction log's database: tables, engine, migrations, queries and CLI commands."""
