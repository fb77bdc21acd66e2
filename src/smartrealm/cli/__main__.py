"""``python -m smartrealm.cli``: how `serve` starts each component."""

from smartrealm.cli import main

main()
