"""The privacy audit's nearest-neighbour search: one matrix product per batch of queries against
the whole reference, versus the obvious loop (each query's distances to every reference film,
then its minimum).

    python benchmarks/privacy_search.py [--reference 20000] [--queries 2000] [--side 32]

Random uint8 films stand in for the store and the archive (the search does not care what they show).
Prints seconds per way, their ratio, and checks that both find the same neighbours.
"""

from __future__ import annotations

import argparse
import time

import torch

from cxrsynth.privacy.audit import _best  # the search kernel the Auditor runs per batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--side", type=int, default=32)
    parser.add_argument("--batch", type=int, default=512)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    reference = torch.randint(0, 256, (args.reference, args.side**2), generator=generator).float() / 255
    queries = torch.randint(0, 256, (args.queries, args.side**2), generator=generator).float() / 255
    queries[:10] = reference[:10]  # planted copies: both ways must find them at distance 0
    norms = reference.square().sum(1)

    start = time.perf_counter()
    batched = [_best(queries[i : i + args.batch], reference, False, None, norms) for i in range(0, len(queries), args.batch)]
    batched_s = time.perf_counter() - start
    distance, index = (torch.cat(part) for part in zip(*batched, strict=True))

    start = time.perf_counter()
    naive = [(reference - q).norm(dim=1).min(dim=0) for q in queries]
    naive_s = time.perf_counter() - start
    naive_distance = torch.stack([d for d, _ in naive])
    naive_index = torch.stack([i for _, i in naive])

    assert torch.equal(index, naive_index) and torch.allclose(distance, naive_distance, atol=1e-4)
    assert (distance[:10] == 0).all()
    print(f"{args.queries} queries x {args.reference} reference films of {args.side}x{args.side}, "
          f"{torch.get_num_threads()} threads")
    print(f"  loop over queries:        {naive_s:7.2f} s")
    print(f"  batched matrix products:  {batched_s:7.2f} s  ({naive_s / batched_s:.1f}x faster); same neighbours")


if __name__ == "__main__":
    main()
