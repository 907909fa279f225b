"""``python -m cxrsynth``: the ``cxrsynth`` console script (``cxrsynth.commands``)."""

from cxrsynth.commands import main

main()
