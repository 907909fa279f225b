"""The progressive schedule: images shown → resolution, fade-in alpha and batch size.

The first resolution has only a stabilisation phase; every later one a fade-in (alpha rising
linearly from 0 to 1 over its images) then a stabilisation. Because everything follows from
the number of images shown, a checkpoint that stores that number resumes the schedule exactly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    resolution: int
    fading: bool
    start: int  # images shown when the phase begins
    length: int  # images in the phase
    batch_size: int

    @property
    def name(self) -> str:
        return f"{self.resolution}-{'fade' if self.fading else 'stable'}"


class ProgressiveSchedule:
    """Phases for resolutions 4, 8, ... with per-resolution image counts and batch sizes."""

    def __init__(self, resolutions: list[int], fade_images: list[int], stable_images: list[int], batch_sizes: list[int]):
        if not (len(resolutions) == len(fade_images) == len(stable_images) == len(batch_sizes)):
            raise ValueError("gan schedule: one fade, stable and batch entry per resolution is needed")
        self.phases: list[Phase] = []
        start = 0
        for i, (res, fade, stable, batch) in enumerate(zip(resolutions, fade_images, stable_images, batch_sizes)):
            if i and fade > 0:
                self.phases.append(Phase(res, True, start, fade, batch))
                start += fade
            if stable > 0:
                self.phases.append(Phase(res, False, start, stable, batch))
                start += stable
        self.total_images = start

    def phase_at(self, images_seen: int) -> Phase:
        """The phase running when ``images_seen`` images have been shown (the last one past the end)."""
        for phase in self.phases:
            if images_seen < phase.start + phase.length:
                return phase
        return self.phases[-1]

    def at(self, images_seen: int) -> tuple[Phase, float]:
        """(phase, alpha) after ``images_seen`` images; alpha is 1 outside fade-ins."""
        phase = self.phase_at(images_seen)
        if not phase.fading:
            return phase, 1.0
        return phase, min(max((images_seen - phase.start) / phase.length, 0.0), 1.0)
