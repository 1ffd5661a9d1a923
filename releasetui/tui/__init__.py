"""The Textual TUI.  Only this package imports Textual; the core and the CLI never do."""
