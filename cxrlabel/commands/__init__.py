"""CLI command modules of cxrlabel, one per command."""
