"""One module per model kind, each defining ``KIND`` (:class:`rocksr.models.registry.ModelKind`)."""
