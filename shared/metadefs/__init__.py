"""The metadata definitions catalog's operator tools: ``python -m shared.metadefs.load`` and the definitions we ship."""
