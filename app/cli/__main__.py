"""``python -m app.cli``: the ``textcls`` command."""

from app.cli import main

main()
