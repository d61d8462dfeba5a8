"""The prediction log: records, redaction, writer, spill file, tables, migrations, feedback.

May import ``app.config`` and ``app.errors`` only: never ``app.edge`` or ``app.plane``, which
hand it records. Its CLI commands (``textcls db``, ``feedback``, ``logs``) live here too.
"""
