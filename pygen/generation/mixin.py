"""``GenerationMixin``: ``generate()`` for every model implementing ``protocol.GenerationModel``."""


class GenerationMixin:
    """Adds ``generate()``; the engine lives in this package (being written, see issue 6)."""
