"""Typed params: one pydantic model per section of params.yaml, one module per section.

Import the section a stage reads, so the stage depends on that module alone::

    from cxrsynth.config.base import load_section
    from cxrsynth.config.gan import GANParams

    params = load_section(GANParams, "params.yaml")

``cxrsynth.config.sections`` lists every section (for the ``params`` stage, which
validates them all before any other stage runs).
"""
