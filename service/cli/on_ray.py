"""``claimsieve screen --ray``: the batches checked by Ray Data on a cluster.

The items go into a Ray dataset; ``map_batches`` hands them to a pool of
checker actors (one per worker, each loading the models once and checking a
batch with ``Checker.check_many``, as ``screen`` does here); the result rows
come back in input order and are written to OUT by ``screen`` itself, so a run
on Ray resumes like one here. Every node needs the corpora: the same
``CLAIMSIEVE_DATABASE_URL`` and data folder (shared storage), or the built-in
corpus, which each actor builds for itself.

Needs ``pip install 'claimsieve[ray]'``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from service.settings import Settings


class CheckerActor:
    """A Ray actor: the pipeline, built once; a batch of items in, their result rows out."""

    def __init__(self, settings: Settings, top_k: int | None) -> None:
        from service import components

        self.checker = components.build(settings).checker
        self.top_k = top_k

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from service.jobs import item_from_row, result_body

        items = [item_from_row(json.loads(payload)) for payload in batch["item"]]
        found = self.checker.check_many(items, self.top_k)
        rows = [
            json.dumps(result_body(i, f), ensure_ascii=False)
            for i, f in zip(items, found, strict=True)
        ]
        return {"position": batch["position"], "row": rows}


def checked(
    batches: Sequence[Sequence[Any]],
    address: str,
    workers: int,
    settings: Settings,
    top_k: int | None,
) -> Iterator[list[dict[str, Any]]]:
    """The result rows of the items, in input order, a batch at a time, from ``workers``
    actors on the cluster at ``address`` (``local``: start one on this machine)."""
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise SystemExit("--ray needs Ray: pip install 'claimsieve[ray]'") from exc

    from service.jobs import payload

    rows = [
        {"position": position, "item": json.dumps(payload(item), ensure_ascii=False)}
        for position, item in enumerate(item for batch in batches for item in batch)
    ]
    if not rows:
        return
    size = max(len(batch) for batch in batches)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=None if address == "local" else address,
            num_cpus=workers if address == "local" else None,
            include_dashboard=False,
            log_to_driver=False,
        )
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        dataset = ray.data.from_items(
            rows, override_num_blocks=max(1, len(rows) // size)
        ).map_batches(
            CheckerActor,
            fn_constructor_args=(settings, top_k),
            batch_size=size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
        )
        for out in dataset.iter_batches(batch_size=size, batch_format="numpy"):
            yield [json.loads(row) for row in out["row"]]
    finally:
        if started_here:
            ray.shutdown()
