"""Whole-slice and stack inference with a trained model: ``rocksr enhance``
(:func:`rocksr.enhance.run.enhance`; described in ``docs/enhance.md``)."""
