"""The `smartrealm app` commands' machinery: an app developer's view of a realm (connect,
get, token). The Typer commands live in ``smartrealm.cli.app_commands``."""
