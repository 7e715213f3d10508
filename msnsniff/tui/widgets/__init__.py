"""The Textual TUI: views over a capture or live traffic (imported only by the CLI, lazily)."""
