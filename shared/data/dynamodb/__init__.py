"""The DynamoDB adapters (pynamodb): one table holds images, their list entries, tasks and quota counters.

``table.py`` binds the pynamodb models of every item kind to one table and one DynamoDB client; ``images.py``
and ``tasks.py`` are the repositories; ``shared/quota/ledger.py`` reads and writes the counters through the same
models. Table design and access patterns: docs/data-model.md.
"""
