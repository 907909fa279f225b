"""The radiologist real-or-generated review of paper 001 (section 4.4) as a web application.

``design`` picks the films and writes the study (images named by random IDs, an SQLite design);
``answers`` keeps readers, tokens and every answer in SQLite; ``app`` serves the study (FastAPI);
``simulated`` answers it through the same HTTP API with the trained discriminator; ``analysis``
turns the answers into the paper's statistics and ``figures`` draws them beside the paper's.
Run ``python -m cxrsynth.reader_study --help`` for the ``serve`` and ``add-reader`` commands.
"""
