"""The Quota box of Glance's domain controller: Glance's four unified limits, enforced as hard limits.

``ledger.py`` reads limits and usage and turns a change's usage into counter updates; the unit of work
(``shared/services/unit_of_work.py``) writes them in the same transaction as the change they count, so a change
and its accounting commit together or not at all (docs/quotas.md). ``recount.py`` is the operator's repair tool.
"""
