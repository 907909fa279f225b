"""Simulated readers: the trained discriminator answering the study through the app's HTTP API.

There are no radiologists on the demo, so this stands in for them to run every path of the study
(links, answers, storage, analysis); what it produces is marked simulated wherever it appears.
Each simulated reader enters its grade, pages through every screen and fetches the films exactly as
the browser does, scores them all with the discriminator (the PGGAN critic: higher looks more real),
adds its own judgement noise, and then answers: on a grid it calls the more real-looking half of
the study's grid films real (the design's prior is one half real), on a pair the more real-looking
film. It never sees the truth: the app has none to give.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests
from PIL import Image

from cxrsynth.resize import pillow_box

Scorer = Callable[[np.ndarray], np.ndarray]  # (N, r, r) uint8 -> (N,) realness


@contextlib.contextmanager
def running_server(app, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free local port in a background thread; yield its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the reader-study server did not start")
            time.sleep(0.02)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def discriminator_scorer(gan_folder: str | Path) -> tuple[Scorer, int]:
    """(score, side): the exported PGGAN discriminator's critic value for films resized to its side."""
    import torch

    from cxrsynth.sampling import load_discriminator_state, load_generator
    from cxrsynth.models.gan import build_networks

    _, config = load_generator(gan_folder)
    _, discriminator = build_networks(config)
    discriminator.load_state_dict(load_discriminator_state(gan_folder))
    discriminator.eval()
    side = config.resolutions[-1]

    @torch.no_grad()
    def score(images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(127.5).sub_(1.0)[:, None]
        return discriminator(x, side).double().numpy()

    return score, side


def _film(content: bytes, side: int) -> np.ndarray:
    picture = Image.open(io.BytesIO(content)).convert("L")
    return np.asarray(pillow_box(picture, side))


def answer_study(base_url: str, token: str, grade: str, scorer: Scorer, side: int, noise: float,
                 seed: int, timeout: float = 60.0) -> int:
    """One simulated reader's whole session through the HTTP API; returns the answers it gave."""
    rng = np.random.default_rng(seed)
    api = f"{base_url}/api/r/{token}"
    with requests.Session() as http:
        def call(method: str, url: str, **kwargs) -> dict:
            response = http.request(method, url, timeout=timeout, **kwargs)
            response.raise_for_status()
            return response.json()

        call("POST", f"{api}/grade", json={"grade": grade})
        screens = [call("GET", f"{api}/screen/{n}") for n in range(call("GET", api)["screens"])]
        films = []
        for screen in screens:
            for image in screen["images"]:
                response = http.get(base_url + image["url"], timeout=timeout)
                response.raise_for_status()
                films.append(_film(response.content, side))
        scores = scorer(np.stack(films))
        scores = scores + rng.normal(0.0, noise * (scores.std() or 1.0), size=len(scores))
        grid_scores = [scores[i] for screen, i in _positions(screens) if screen["kind"] == "grid"]
        threshold = float(np.median(grid_scores)) if grid_scores else 0.0
        given = 0
        for screen, first in _starts(screens):
            n, count = screen["screen"], len(screen["images"])
            own = scores[first:first + count]
            if screen["kind"] == "grid":
                for position in range(count):
                    call("PUT", f"{api}/screen/{n}/answer", json={"position": position, "real": bool(own[position] > threshold)})
            else:
                call("PUT", f"{api}/screen/{n}/answer", json={"position": int(np.argmax(own)), "real": True})
            given += count
            call("POST", f"{api}/screen/{n}/done")
        call("POST", f"{api}/submit")
    return given


def _starts(screens: list[dict]) -> Iterator[tuple[dict, int]]:
    first = 0
    for screen in screens:
        yield screen, first
        first += len(screen["images"])


def _positions(screens: list[dict]) -> Iterator[tuple[dict, int]]:
    for screen, first in _starts(screens):
        for offset in range(len(screen["images"])):
            yield screen, first + offset


def run_readers(base_url: str, readers: list[tuple[str, str]], scorer: Scorer, side: int, noise: float,
                seed: int, workers: int = 8) -> int:
    """Run simulated readers ``(token, grade)`` at once (``workers`` at a time); each reader's noise
    is seeded by ``seed`` and its place in the list, so the answers do not depend on timing."""
    from tqdm import tqdm

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(answer_study, base_url, token, grade, scorer, side, noise, seed * 1000 + i)
                   for i, (token, grade) in enumerate(readers)]
        return sum(f.result() for f in tqdm(futures, desc="simulated readers", unit="reader"))
