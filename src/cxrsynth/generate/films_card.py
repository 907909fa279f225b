"""The facts of the ``README.md`` card written beside films made by ``Generator.generate``.

The card itself is the archive's (``synthesis.card.render_card``): these films have no source
table beside them, no view model and no privacy filter, so those sections are left out or say so.
Everything comes from the films and their bundle's manifest (no date), so the same call writes the
same bytes.
"""

from __future__ import annotations

from cxrsynth.labels import LABELS
from cxrsynth.synthesis.card import CardFacts, generator_digest

PRIVACY_NOTE = ("Not privacy-filtered: `cxrsynth generate` made these films from a generator bundle, which holds "
                "no real film, and the archive stage's privacy filter needs the source's training films to compare "
                "them with. Run the pipeline's `archive` stage for a filtered archive.")


def films_facts(films, shards: list[str]) -> CardFacts:
    """``CardFacts`` for ``films`` (a ``GeneratedFilms``) written as ``shards``: counts, label mix, the
    generator's digest, the bundle's training source, and per requested label the films requested,
    converged and given their label by the labeller."""
    manifest = films.bundle.manifest
    labels = films.table["Finding Labels"].astype(str).str.split("|")
    per_label = [f"{name}: {row['converged']} of {row['requested']} requested films converged; the labeller gives "
                 + ("none" if row["agreement"] is None else f"{row['agreement']:.0%}") + f" of them {name}."
                 for name, row in films.per_label.items()]
    made_by = (f"`cxrsynth generate` (`Generator.generate`) from a cxrsynth generator bundle: for each requested "
               f"label, class-optimised latents (Segal et al. 2021, Algorithm 1, with the archive's settings in the "
               f"bundle's `bundle.json`), {films.follow_ups} film(s) per synthetic patient sampled around each; "
               f"seed {films.seed}. {films.converged} of {films.requested} requested films converged; films whose "
               "optimisation did not converge were not written")
    return CardFacts(
        images=films.converged, patients=int(films.table["Patient ID"].nunique()),
        resolution=int(manifest["generator"]["resolution"]), shards=tuple(shards),
        labels={name: int(labels.map(lambda parts, name=name: name in parts).sum()) for name in LABELS},
        generator_digest=generator_digest(films.bundle.part("generator")), made_by=made_by,
        source=manifest["source"]["data_source"], privacy_note=PRIVACY_NOTE,
        notes=(f"Labels: the bundle's labeller ({manifest['labeller']['architecture']}) at its "
               f"{manifest['labeller']['thresholds_kind']} cut-offs, as the archive stage labels its films.",
               *per_label,
               "View Position is blank: the archive stage predicts it with a view model fitted on the real "
               "training films, which the bundle does not hold."))
