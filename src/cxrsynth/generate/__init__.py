"""Labelled generation on demand: a portable generator bundle and the ``Generator`` that reads it.

    from cxrsynth.generate import Generator
    films = Generator.load("data/generator").generate(labels=["Effusion", "Cardiomegaly"], n=64)
    films.save("generated/")

``bundle`` writes and reads the bundle folder (the ``generator`` stage writes ``data/generator``),
``generator`` holds ``Generator`` and its result ``GeneratedFilms``.
"""

from cxrsynth.generate.generator import GeneratedFilms, Generator, NothingConvergedError

__all__ = ["GeneratedFilms", "Generator", "NothingConvergedError"]
