"""CLI command modules of cxrembed, one per command."""
