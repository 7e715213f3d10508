"""Session analysis: routing chunks to dissectors and reducing frames into understanding."""
