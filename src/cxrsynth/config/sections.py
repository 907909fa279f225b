"""Every params section, in pipeline order: what the ``params`` stage validates."""

from __future__ import annotations

from cxrsynth.config.archive import ArchiveParams
from cxrsynth.config.base import Section, parse_section
from cxrsynth.config.classifier import ClassifierParams
from cxrsynth.config.data import DataParams
from cxrsynth.config.embed import EmbedParams
from cxrsynth.config.fid import FIDParams
from cxrsynth.config.gan import GANParams
from cxrsynth.config.prepare import PrepareParams
from cxrsynth.config.prevalence import PrevalenceParams
from cxrsynth.config.privacy import PrivacyParams
from cxrsynth.config.reader_study import ReaderStudyParams
from cxrsynth.config.split import SplitParams
from cxrsynth.config.synthetic_auroc import SyntheticAurocParams
from cxrsynth.errors import ParamsError

SECTIONS: dict[str, type[Section]] = {
    model.section: model
    for model in (DataParams, PrepareParams, SplitParams, ClassifierParams, GANParams, FIDParams,
                  PrevalenceParams, PrivacyParams, ArchiveParams, EmbedParams, SyntheticAurocParams, ReaderStudyParams)
}


#: sections another pipeline validates (``baselines/dvc.yaml`` reads ``baselines``)
OTHER_PIPELINES = ("baselines",)
#: top-level keys that are not sections: the name of the profile params.yaml was composed with
NOT_SECTIONS = ("profile",)


def validate_all(params: dict, source: str = "params.yaml") -> dict[str, Section]:
    """Every section of ``params`` validated, in pipeline order; a missing, unknown or bad section
    raises ParamsError naming it (nothing is returned unless all of them pass). Sections of other
    pipelines (``OTHER_PIPELINES``) are left to them."""
    unknown = sorted(set(params) - set(SECTIONS) - set(OTHER_PIPELINES) - set(NOT_SECTIONS))
    if unknown:
        raise ParamsError(f"{source}: unknown section(s) {', '.join(unknown)} (known: {', '.join(SECTIONS)})")
    if not isinstance(params.get("profile", ""), str):
        raise ParamsError(f"{source}: profile: expected the profile's name (params/profile/<name>.yaml)")
    return {name: parse_section(params, model, source) for name, model in SECTIONS.items()}
