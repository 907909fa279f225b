"""The reproduction report: every result of a run beside paper 001's, with where each came from.

``sources`` reads ``metrics/`` and remembers every file it read; ``provenance`` says what the run
was (data, sizes, params, revision, devices, weights, warnings); ``sections`` builds the results
in the paper's order as plain blocks (text, notes on comparability, tables, figures, the data
behind a figure); ``render`` writes them as one self-contained HTML page and as Markdown.
"""
