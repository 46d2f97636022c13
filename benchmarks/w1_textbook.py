"""W1, the textbook experiment: per-layer std of a deep ReLU MLP over seeds, jinit vs loops.

MLP width 512, depth 10, 1000 samples, He normal (untruncated: N(0, 2/fan_in)), ReLU, no bias,
32 seeds; each seed draws its input and weights and records the std of every layer's
activation. Contenders, all float32, run in the same process, interleaved round by round:

* ``numpy loop``: ``rng = np.random.default_rng(seed)``, ``W = rng.standard_normal(...,
  dtype=float32) * sqrt(2/fan_in)``, ``x = np.maximum(0, W @ x)``, ``x.std()`` (the textbook
  code, in float32 so it does the same arithmetic as jinit; float64 ``rng.normal`` is ~2x
  slower);
* ``torch loop``: ``torch.nn.init.kaiming_normal_(W, nonlinearity="relu", generator=g)`` with a
  ``torch.Generator`` per seed, ``torch.relu(W @ x)``, under ``no_grad``; measured with one
  thread per core (``torch.set_num_threads(cores)``, the issue's rule) *and* with one thread,
  the best counting as the peer (on a loaded machine torch's thread pool can be 10-50x slower
  with 2 threads than with 1);
* ``jinit.sweep``: ``jinit.sweep(jinit.mlp(512, 10, bias=False),
  jinit.variance_scaling(2.0, "fan_in", "normal"), seeds=32, batch=1000)``: forward **and
  backward** pass and ~14 statistics per layer (the peers compute the forward std only);
* ``jinit forward (jit∘vmap∘scan)``: the peers' exact work written with a jinit initialiser:
  ``jax.jit(jax.vmap(one_seed))`` over seeds, ``lax.scan`` over layers drawing each layer's
  weights inside the scan.

The matmul roofline is measured in the same run, every round: the best of four probes on the
networks' ``(batch, width) @ (width, width)`` float32 product (:func:`roofline_fns`): stacked in
one ``jnp.matmul`` / ``np.matmul`` call, and chained in cache on one chunk's stack as the sweeps
run them. The sweep's
matmul FLOPs per seed are ``3 · depth · 2·batch·width²`` (forward, input cotangent and weight
gradient per layer; the 32-row Gram matrix of the distinct-unit count adds < 1 %), the forward
contenders' ``depth · 2·batch·width²``. A probe of the draws alone (:func:`jinit_forward`) bounds
what the forward can reach with jax's bits: matmuls at the roofline plus those draws.

    python benchmarks/w1_textbook.py [--quick]
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from benchmarks import _common as C


def numpy_loop(seeds: int, width: int, depth: int, batch: int) -> np.ndarray:
    """The textbook numpy experiment (float32): per-seed, per-layer std of the activation."""
    stds = np.empty((seeds, depth))
    sd = np.float32(math.sqrt(2.0 / width))
    for s in range(seeds):
        rng = np.random.default_rng(s)
        x = rng.standard_normal((width, batch), dtype=np.float32)
        for layer in range(depth):
            w = rng.standard_normal((width, width), dtype=np.float32) * sd
            x = np.maximum(0, w @ x)
            stds[s, layer] = x.std()
    return stds


def torch_loop(torch: Any, seeds: int, width: int, depth: int, batch: int) -> np.ndarray:
    """The textbook torch experiment: ``kaiming_normal_`` with a ``Generator`` per seed."""
    stds = torch.empty(seeds, depth)
    with torch.no_grad():
        w = torch.empty(width, width)
        for s in range(seeds):
            g = torch.Generator().manual_seed(s)
            x = torch.randn(width, batch, generator=g)
            for layer in range(depth):
                torch.nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g)
                x = torch.relu(w @ x)
                stds[s, layer] = x.std()
    return stds.numpy()


def torch_fwd_bwd_loop(torch: Any, seeds: int, width: int, depth: int, batch: int) -> np.ndarray:
    """The peer of a full sweep: per seed, the forward pass with its per-layer std, the probe
    loss :math:`L = \\langle v, h^L\\rangle` (``v`` standard normal, as ``jinit.sweep``), one
    ``backward()``, the per-layer second moment of :math:`\\partial L/\\partial x^l` and the
    Frobenius norm of every weight's gradient: the same 3 matmuls per layer as the sweep."""
    out = torch.empty(seeds, 3, depth)
    for s in range(seeds):
        g = torch.Generator().manual_seed(s)
        x = torch.randn(batch, width, generator=g)
        ws = []
        for _ in range(depth):
            w = torch.empty(width, width)
            torch.nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g)
            ws.append(w.requires_grad_())
        acts = []
        for w in ws:
            x = torch.relu(x @ w)
            x.retain_grad()
            acts.append(x)
        v = torch.randn(batch, width, generator=g)
        (acts[-1] * v).sum().backward()
        with torch.no_grad():
            for layer, (a, w) in enumerate(zip(acts, ws, strict=True)):
                out[s, 0, layer] = a.std()
                out[s, 1, layer] = a.grad.square().mean()
                out[s, 2, layer] = w.grad.norm()
    return out.numpy()


def sweep_chunk(width: int, depth: int, batch: int, gradients: bool) -> int:
    """Seeds per compiled call as ``jinit.sweep`` sizes them for the bias-free MLP on this host's
    devices (:func:`jinit._core._seeds.cache_chunk`; one per device off CPU)."""
    import jax

    import jinit
    from jinit._core._seeds import cache_chunk
    from jinit.sweeps._statistics import layer_working_set

    net = jinit.mlp(width, depth, bias=False)
    ws = layer_working_set(net, batch, np.dtype("float32"), gradients=gradients)
    return cache_chunk(jax.devices(), ws) or len(jax.devices())


def seed_stack(
    width: int, depth: int, batch: int, seeds: int | None, gradients: bool
) -> tuple[int, Any]:
    """``(chunk, sharding)``: one sweep chunk (:func:`sweep_chunk`; of at most ``seeds`` seeds,
    rounded up to the device count) and the sharding of a stack of it over every device, as
    the sweep's chunk is sharded: what the jax contenders and probes run on."""
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from jinit._core._seeds import rounded_chunk

    devs = jax.devices()
    chunk = sweep_chunk(width, depth, batch, gradients)
    chunk = rounded_chunk(min(chunk, seeds) if seeds else chunk, len(devs))
    return chunk, NamedSharding(Mesh(np.array(devs), ("seeds",)), PartitionSpec("seeds"))


def jinit_forward(
    width: int, depth: int, batch: int, key_impl: str | None = None, kind: str = "forward"
):
    """``jit(vmap(one_seed))`` with a jinit initialiser (keys of ``key_impl``, default
    threefry), run over chunks of seeds sharded over every device, each chunk sized like a
    sweep's (:func:`jinit._core._seeds.cache_chunk`). ``kind``:

    * ``"forward"``: the peers' forward work, per-layer std;
    * ``"draws"``: its random draws alone (each seed's input and every layer's weights, the same
      keys), each reduced to its sum so nothing is dropped, no matmul: matmuls at the roofline
      plus these draws bound what the forward can reach with jax's bits;
    * ``"fwd_bwd"``: the forward and the backward pass of the sweep's probe loss
      ``<v, h^L>`` (3 matmuls per layer, each layer's input, pre-activation and weights saved
      by the forward scan), one grad² and one weight-gradient norm per layer: what jax itself
      runs for the full sweep's matmul work, without its statistics.
    """
    import jax
    import jax.numpy as jnp

    import jinit

    init = jinit.variance_scaling(2.0, "fan_in", "normal")
    root = jax.random.key(0, impl=key_impl) if key_impl else jax.random.key(0)
    chunk, seeds_axis = seed_stack(width, depth, batch, None, gradients=kind == "fwd_bwd")

    def one_seed(i):
        key = jax.random.fold_in(root, i)
        kp, kx = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
        x0 = jax.random.normal(kx, (batch, width), jnp.float32)

        def weight(idx):
            return init(jax.random.fold_in(kp, idx), (width, width), jnp.float32)

        if kind == "draws":
            sums = jax.lax.map(lambda idx: jnp.sum(weight(idx)), jnp.arange(depth))
            return jnp.sum(x0) + sums

        def layer(x, idx):
            w = weight(idx)
            h = x @ w
            a = jax.nn.relu(h)
            return a, (jnp.std(a) if kind == "forward" else (x, h, w))

        _, out = jax.lax.scan(layer, x0, jnp.arange(depth))
        if kind == "forward":
            return out
        v = jax.random.normal(jax.random.fold_in(key, 2), (batch, width), jnp.float32)

        def back(ct, inp):  # ct = dL/da^l; dL/dh^L = v on the last layer
            idx, x, h, w = inp
            g = jnp.where(idx == depth - 1, v, ct * (h > 0))
            dw = x.T @ g
            return g @ w.T, (jnp.mean(g * g), jnp.sqrt(jnp.sum(dw * dw)))

        steps = (jnp.arange(depth), *out)
        return jax.lax.scan(back, jnp.zeros_like(x0), steps, reverse=True)[1]

    fn = jax.jit(jax.vmap(one_seed), in_shardings=seeds_axis, out_shardings=seeds_axis)

    def run(idx: np.ndarray) -> Any:
        parts = [
            fn(jax.device_put(idx[c : c + chunk], seeds_axis)) for c in range(0, len(idx), chunk)
        ]
        return jax.tree.map(lambda *p: np.concatenate([np.asarray(a) for a in p]), *parts)

    return run


def roofline_fns(
    width: int, batch: int, depth: int, seeds: int
) -> tuple[dict[str, Any], dict[str, float], int]:
    """The matmul roofline probes ``({name: f}, {name: flops per call}, chained stack size)``,
    each call ~4 GFLOP
    (tens of ms: call overhead and waking the threads do not count).

    * ``jax`` / ``numpy``: ``nb`` stacked ``(batch, width) @ (width, width)`` float32 products
      in one ``jnp.matmul`` (jitted) / ``np.matmul`` call;
    * ``jax_chain`` / ``numpy_chain``: the same products as the sweeps run them, held in cache
      and chained: a stack of one chunk's seeds (sharded over the devices as the sweep's chunk
      is, in jax) multiplied by an orthogonal matrix again and again (``lax.fori_loop`` in one
      jitted call; a Python loop for numpy). Small products that are memory-bound when
      stacked run at their in-cache speed here (W2's 64-wide layers on some hosts).

    The roofline of a round is the best of the four.
    """
    import jax
    import jax.numpy as jnp

    one = 2.0 * batch * width * width
    nb = max(1, int(4e9 // one))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((nb, batch, width), dtype=np.float32)
    b = rng.standard_normal((nb, width, width), dtype=np.float32)
    ja, jb = jnp.asarray(a), jnp.asarray(b)
    mm = jax.jit(jnp.matmul)

    chunk, stack = seed_stack(width, depth, batch, seeds, gradients=False)
    reps = max(1, int(4e9 // (one * chunk)))
    q = np.linalg.qr(rng.standard_normal((width, width)))[0].astype(np.float32)
    qs = np.broadcast_to(q, (chunk, width, width)).copy()
    xs = rng.standard_normal((chunk, batch, width), dtype=np.float32)
    jx, jq = jax.device_put(xs, stack), jax.device_put(qs, stack)

    @jax.jit
    def chain(x, w):
        return jax.lax.fori_loop(0, reps, lambda _, y: jnp.matmul(y, w), x)

    def numpy_chain():
        y = xs
        for _ in range(reps):
            y = np.matmul(y, qs)
        return y

    fns = {
        "jax": lambda: mm(ja, jb),
        "numpy": lambda: np.matmul(a, b),
        "jax_chain": lambda: chain(jx, jq),
        "numpy_chain": numpy_chain,
    }
    flops = {"jax": one * nb, "numpy": one * nb}
    flops |= {"jax_chain": one * chunk * reps, "numpy_chain": one * chunk * reps}
    for f in fns.values():
        C.block(f())
    return fns, flops, chunk


def product_fns(width: int, batch: int, depth: int, seeds: int) -> dict[str, Any]:
    """The full sweep's three products per layer as its scans run them, one probe each:
    ``forward`` ``x·W``, ``dx`` ``g·Wᵀ`` and ``dw`` ``xᵀ·g`` (the weight gradient, contracted
    over the batch), each over ``depth`` layers read from stacks in memory (as the backward
    reads the forward's saved stacks), for one full-sweep chunk of seeds sharded over the
    devices as the sweep's chunk is. Each product is summed (one read of it) so it is kept.

    Returns ``{"fns": {name: f}, "flops": FLOPs per call (each probe), "chunk": seeds per
    call, "inputs": (xs, ws, gs) numpy stacks (chunk, depth, ...)}``.
    """
    import jax
    import jax.numpy as jnp

    chunk, stack = seed_stack(width, depth, batch, seeds, gradients=True)
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((chunk, depth, batch, width), dtype=np.float32)
    gs = rng.standard_normal((chunk, depth, batch, width), dtype=np.float32)
    ws = rng.standard_normal((chunk, depth, width, width), dtype=np.float32) / np.sqrt(width)
    jx, jg, jw = (jax.device_put(a, stack) for a in (xs, gs, ws))

    def scanned(product: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def one_seed(a, b):
            body = lambda acc, ab: (acc + jnp.sum(product(*ab)), None)  # noqa: E731
            return jax.lax.scan(body, jnp.float32(0), (a, b))[0]

        return jax.jit(jax.vmap(one_seed), in_shardings=stack, out_shardings=stack)

    fwd = scanned(lambda x, w: x @ w)
    dx = scanned(lambda g, w: g @ w.T)
    dw = scanned(lambda x, g: x.T @ g)
    fns = {"forward": lambda: fwd(jx, jw), "dx": lambda: dx(jg, jw), "dw": lambda: dw(jx, jg)}
    for f in fns.values():
        C.block(f())
    flops = chunk * depth * 2.0 * batch * width * width
    return {"fns": fns, "flops": flops, "chunk": chunk, "inputs": (xs, ws, gs)}


def mlp_experiment(
    *,
    workload: str,
    width: int,
    depth: int,
    batch: int,
    seeds: int,
    peer_seeds: dict[str, int],
    repeats: int,
) -> dict[str, Any]:
    """Runs the contenders ``repeats`` interleaved rounds (after warm-up) and the roofline.

    Contenders: the numpy loop, the torch loop (``cores`` threads and 1 thread), ``jinit.sweep``
    and the forward-only ``jit(vmap(scan))``, each jinit one also with philox4x32 keys (one
    device only: jax 0.10 cannot compile philox sharded over several devices). Returns
    ``rows`` (seeds/s, compile time, FLOP rate, roofline fraction, ratio to the best peer),
    ``rate``, ``best_peer``, ``roofline`` and the raw times.
    """
    import jax

    import jinit

    torch = C.setup_torch()
    fwd_flops = depth * 2.0 * batch * width * width
    init = jinit.variance_scaling(2.0, "fan_in", "normal")
    net = jinit.mlp(width, depth, bias=False)
    impls = {"": None}
    if len(jax.devices()) == 1:
        impls["_philox"] = "philox4x32"

    # -- warm-up and compile times ------------------------------------------------------------
    idx = np.arange(seeds, dtype=np.uint32)
    fwd, fwd_first = {}, {}
    draws = jinit_forward(width, depth, batch, kind="draws")
    bare = jinit_forward(width, depth, batch, kind="fwd_bwd")
    C.block(draws(idx))
    C.block(bare(idx))
    for suffix, impl in impls.items():
        fwd[suffix] = jinit_forward(width, depth, batch, impl)
        t0 = time.perf_counter()
        C.block(fwd[suffix](idx))
        fwd_first[suffix] = time.perf_counter() - t0
    numpy_loop(1, width, depth, batch)
    if torch is not None:
        torch_loop(torch, 1, width, depth, batch)
        torch_fwd_bwd_loop(torch, 1, width, depth, batch)

    def run_sweep(n_seeds: int, impl: str | None, gradients: bool = True) -> dict[str, Any]:
        stamps: list[float] = []
        time.sleep(C.SETTLE_S)  # as C.timed: the previous contender's threads go quiet
        t0 = time.perf_counter()
        r = jinit.sweep(
            net,
            init,
            seeds=n_seeds,
            batch=batch,
            key_impl=impl,
            progress=lambda label, done, total: stamps.append(time.perf_counter()),
            gradients=gradients,
        )
        total = time.perf_counter() - t0
        if r.per_seed[r.labels[0]]["act.std"].shape != (n_seeds, depth):
            raise RuntimeError("the sweep did not record the per-layer std of every seed")
        chunks = np.diff(stamps)
        return {
            "total_s": total,
            "first_chunk_s": float(chunks[0]),
            "steady_chunks_s": [float(c) for c in chunks[1:]],
            "chunk_size": int(r.config["chunk_size"]),
            "chunks": int(r.config["chunks"]),
        }

    run_sweep(2, None)  # imports and first-use costs (theory module, ...)
    rl_fns, rl_flops, rl_chunk = roofline_fns(width, batch, depth, seeds)
    products = product_fns(width, batch, depth, seeds)

    # -- interleaved rounds -------------------------------------------------------------------
    threads = {"torch": C.cores(), "torch1": 1}

    def torch_run(key: str) -> np.ndarray:
        torch.set_num_threads(threads[key])
        try:
            return torch_loop(torch, peer_seeds["torch"], width, depth, batch)
        finally:
            torch.set_num_threads(C.cores())

    times: dict[str, list[float]] = {}
    sweeps: dict[str, list[dict[str, Any]]] = {f"sweep{s}": [] for s in impls}
    sweeps |= {f"sweepfwd{s}": [] for s in impls}

    def sweep_job(key: str, impl: str | None, gradients: bool) -> Callable[[], None]:
        def job() -> None:
            sw = run_sweep(seeds, impl, gradients)
            sweeps[key].append(sw)
            times.setdefault(key, []).append(sw["total_s"])

        return job

    jobs: dict[str, Callable[[], None]] = {}

    def probe_job(key: str, f: Callable[[], Any]) -> Callable[[], None]:
        def job() -> None:  # one quiet pause, then the best of 3 back-to-back (warm) calls
            time.sleep(C.SETTLE_S)
            times.setdefault(key, []).append(min(C.timed(f, settle=0.0) for _ in range(3)))

        return job

    for name, f in rl_fns.items():  # the roofline, measured in every round
        jobs[f"roofline_{name}"] = probe_job(f"roofline_{name}", f)
    for name, f in products["fns"].items():  # the sweep's products as its scans run them
        jobs[f"product_{name}"] = probe_job(f"product_{name}", f)
    jobs["numpy"] = lambda: times.setdefault("numpy", []).append(
        C.timed(lambda: numpy_loop(peer_seeds["numpy"], width, depth, batch))
    )
    if torch is not None:
        for key in threads:
            jobs[key] = lambda key=key: times.setdefault(key, []).append(
                C.timed(lambda: torch_run(key))
            )
        jobs["torchbwd"] = lambda: times.setdefault("torchbwd", []).append(
            C.timed(lambda: torch_fwd_bwd_loop(torch, peer_seeds["torch"], width, depth, batch))
        )
    jobs["draws"] = lambda: times.setdefault("draws", []).append(C.timed(lambda: draws(idx)))
    jobs["bare"] = lambda: times.setdefault("bare", []).append(C.timed(lambda: bare(idx)))
    for suffix, impl in impls.items():
        jobs[f"fwd{suffix}"] = lambda suffix=suffix: times.setdefault(f"fwd{suffix}", []).append(
            C.timed(lambda: fwd[suffix](idx))
        )
        jobs[f"sweep{suffix}"] = sweep_job(f"sweep{suffix}", impl, True)
        jobs[f"sweepfwd{suffix}"] = sweep_job(f"sweepfwd{suffix}", impl, False)
    for i in range(repeats):  # every contender once per round, in a shuffled order
        for name in C.shuffled(list(jobs), i):
            jobs[name]()

    # -- figures: per round, then the median over rounds (paired: same machine state) ---------
    def per_round_rates(key: str) -> list[float]:
        if key.startswith("sweep") and not key.endswith("_e2e"):
            runs = sweeps[key]
            if all(r["steady_chunks_s"] for r in runs):
                return [r["chunk_size"] / C.median(r["steady_chunks_s"]) for r in runs]
            key = f"{key}_e2e"  # a single chunk: no steady state apart from compilation
        n = {"numpy": peer_seeds["numpy"], "torch": peer_seeds["torch"]}
        n["torch1"] = n["torchbwd"] = peer_seeds["torch"]
        return [n.get(key, seeds) / t for t in times[key.removesuffix("_e2e")]]

    probe_rates = {
        name: [rl_flops[name] / t / 1e9 for t in times[f"roofline_{name}"]] for name in rl_fns
    }
    rl_rounds = [max(r) for r in zip(*probe_rates.values(), strict=True)]
    product_rates = {
        name: [products["flops"] / t / 1e9 for t in times[f"product_{name}"]]
        for name in products["fns"]
    }
    rl = {
        "gflops": C.median(rl_rounds),
        "probes_gflops": {name: C.median(r) for name, r in probe_rates.items()},
        "stacked_products": int(rl_flops["jax"] // (2.0 * batch * width * width)),
        "chained_stack": rl_chunk,
        "per_round_gflops": rl_rounds,
    }
    peers = ["numpy"] + (list(threads) if torch is not None else [])
    keys = (
        peers
        + (["torchbwd"] if torch is not None else [])
        + [
            k
            for s in impls
            for k in (f"fwd{s}", f"sweep{s}", f"sweep{s}_e2e", f"sweepfwd{s}", f"sweepfwd{s}_e2e")
        ]
        + ["draws", "bare"]
    )
    per_round = {k: per_round_rates(k) for k in keys}
    rate = {k: C.median(v) for k, v in per_round.items()}
    best = max(peers, key=lambda k: rate[k])
    best_rounds = [max(per_round[p][i] for p in peers) for i in range(repeats)]
    compile_s: dict[str, float | None] = {}
    chunk_note: dict[str, str] = {}
    for suffix in impls:
        compile_s[f"fwd{suffix}"] = fwd_first[suffix] - C.median(times[f"fwd{suffix}"])
        for key in (f"sweep{suffix}", f"sweepfwd{suffix}"):
            runs = sweeps[key]
            steady = [c for r in runs for c in r["steady_chunks_s"]]
            first = C.median([r["first_chunk_s"] for r in runs])  # the program cached: ≈ 0
            compile_s[key] = max(0.0, first - C.median(steady)) if steady else None
            nc = runs[0]["chunks"]
            chunk_note[key] = f"{nc} chunk{'s' * (nc > 1)} of {runs[0]['chunk_size']}"

    def row(name, key, flops, compile_time, note):
        rr = per_round[key]
        return {
            "key": key,
            "contender": name,
            "seeds_per_s": rate[key],
            "compile_s": compile_time,
            "gflops": rate[key] * flops / 1e9,
            "roofline_fraction": C.median(
                [r * flops / 1e9 / g for r, g in zip(rr, rl_rounds, strict=True)]
            ),
            "ratio_to_best_peer": C.median([r / b for r, b in zip(rr, best_rounds, strict=True)]),
            "ceiling_ratio": C.median(
                [g * 1e9 / flops / b for g, b in zip(rl_rounds, best_rounds, strict=True)]
            ),
            "note": note,
        }

    rows = [
        row("numpy loop", "numpy", fwd_flops, None, f"{peer_seeds['numpy']} seeds per round"),
    ]
    if torch is not None:
        for key, n in threads.items():
            rows.append(
                row(
                    f"torch loop ({n} thread{'s' * (n > 1)})",
                    key,
                    fwd_flops,
                    None,
                    f"{peer_seeds['torch']} seeds per round",
                )
            )
    if torch is not None:
        rows.append(
            row(
                f"torch loop fwd + bwd ({C.cores()} threads)",
                "torchbwd",
                3 * fwd_flops,
                None,
                f"the full sweep's peer: forward, backward, std, grad², weight-grad norms; "
                f"{peer_seeds['torch']} seeds per round",
            )
        )
    for suffix in impls:
        tag = " [philox4x32 keys]" if suffix else ""
        key = f"sweep{suffix}"
        rows += [
            row(
                f"jinit.sweep (steady state){tag}",
                key,
                3 * fwd_flops,
                compile_s[key],
                f"fwd + bwd + 14 stats/layer; {chunk_note[key]}",
            ),
            row(
                f"jinit.sweep (one call, incl. compile){tag}",
                f"{key}_e2e",
                3 * fwd_flops,
                None,
                f"{seeds} seeds per call; each call compiles",
            ),
            row(
                f"jinit.sweep(gradients=False) (steady state){tag}",
                f"sweepfwd{suffix}",
                fwd_flops,
                compile_s[f"sweepfwd{suffix}"],
                f"forward + 11 stats/layer, no backward; {chunk_note[f'sweepfwd{suffix}']}",
            ),
            row(
                f"jinit forward (jit∘vmap∘scan){tag}",
                f"fwd{suffix}",
                fwd_flops,
                compile_s[f"fwd{suffix}"],
                "the peers' work: forward std only",
            ),
        ]
    rows.append(
        row(
            "jax fwd + bwd, no statistics (jit∘vmap∘scan)",
            "bare",
            3 * fwd_flops,
            None,
            "the full sweep's matmuls and draws in plain jax: forward, backward of <v, h^L>, "
            "grad² and weight-grad norm per layer",
        )
    )
    rows.append(
        {
            "key": "draws",
            "contender": "jinit draws alone (no matmul)",
            "seeds_per_s": rate["draws"],
            "compile_s": None,
            "gflops": None,
            "roofline_fraction": None,
            "ratio_to_best_peer": C.median(
                [r / b for r, b in zip(per_round["draws"], best_rounds, strict=True)]
            ),
            "ceiling_ratio": None,
            "note": f"each seed's input and {depth} weight matrices as the forward draws them "
            f"({batch * width + depth * width * width:,} normals), each summed; no matmul",
        }
    )
    return {
        "rows": rows,
        "limits": draw_limits(per_round["draws"], rl_rounds, best_rounds, fwd_flops)
        | {
            "products_fraction": product_limit(
                product_rates, per_round["draws"], rl_rounds, fwd_flops
            )
        },
        "products_gflops": {name: C.median(r) for name, r in product_rates.items()},
        "normals_per_seed": batch * width + depth * width * width,
        "roofline": rl,
        "best_peer": best,
        "rate": rate,
        "times": times,
        "per_round_rates": per_round,
        "sweep_chunks": sweeps,
        "flops_per_seed": {"forward": fwd_flops, "sweep": 3 * fwd_flops},
        "devices": len(jax.devices()),
    }


def draw_limits(
    draw_rates: list[float], rl_rounds: list[float], best_rounds: list[float], fwd_flops: float
) -> dict[str, float]:
    """What jax's bits leave reachable, per round then the median: the forward's matmuls at the
    roofline plus the draws alone (``forward_ratio``, against the best peer) and the full
    sweep's roofline fraction if its only other work were those draws (``sweep_fraction``)."""
    fwd, frac = [], []
    for d, g, b in zip(draw_rates, rl_rounds, best_rounds, strict=True):
        t_draw, t_fwd = 1.0 / d, fwd_flops / (g * 1e9)
        fwd.append(1.0 / (t_fwd + t_draw) / b)
        frac.append(3 * t_fwd / (3 * t_fwd + t_draw))
    return {"forward_ratio": C.median(fwd), "sweep_fraction": C.median(frac)}


def product_limit(
    product_rates: dict[str, list[float]],
    draw_rates: list[float],
    rl_rounds: list[float],
    fwd_flops: float,
) -> float:
    """The full sweep's roofline fraction if its only work were its three products per layer
    at the speeds they run in its scans plus its draws, per round then the median.

    ``product_rates``: GFLOP/s per round of each product (``forward``, ``dx``, ``dw``, from
    :func:`product_fns`); ``draw_rates``: the draws probe's seeds/s per round; ``fwd_flops``:
    one product's FLOPs per seed (``depth · 2·batch·width²``). Per round the fraction is
    ``3·F/roofline ÷ (Σ_k F/rate_k + 1/draws)``.
    """
    rounds = zip(*product_rates.values(), draw_rates, rl_rounds, strict=True)
    fractions = []
    for *rates, d, g in rounds:
        t_products = sum(fwd_flops / (r * 1e9) for r in rates)
        fractions.append(3 * fwd_flops / (g * 1e9) / (t_products + 1.0 / d))
    return C.median(fractions)


COLUMNS = [
    ("contender", "contender"),
    ("seeds_per_s", "seeds/s"),
    ("ratio_to_best_peer", "× best peer"),
    ("gflops", "matmul GFLOP/s"),
    ("roofline_fraction", "roofline fraction"),
    ("ceiling_ratio", "× best peer at 100 % roofline"),
    ("compile_s", "compile (s)"),
    ("note", "note"),
]


def _peer_row(exp: dict[str, Any], key: str) -> dict[str, Any]:
    return next(r for r in exp["rows"] if r["key"] == key)


def mlp_goals(
    workload: str,
    exp: dict[str, Any],
    target_ratio: float,
    roofline_goal: float | None,
    full_ratio: float | None = None,
) -> list[dict[str, Any]]:
    """The goals of W1/W2 (issue 13), verdicts and reasons from the measurements.

    ``target_ratio`` is the forward-statistics goal against the best peer (the peers compute
    the forward pass and one std per layer); ``roofline_goal`` the full sweep's fraction of the
    matmul roofline; ``full_ratio`` the full sweep's goal against the torch loop doing the same
    forward + backward work (``None``: reported, no target). Verdicts use the default
    (threefry) contenders; the philox4x32 rows, when measured, are quoted in the reasons to
    show how much of the gap is random-number generation.
    """
    rows = {r["key"]: r for r in exp["rows"]}
    sw, fw, sf = rows["sweep"], rows["fwd"], rows["sweepfwd"]
    swp, fwp = rows.get("sweep_philox"), rows.get("fwd_philox")
    best = exp["best_peer"]
    bp = exp["rate"][best]
    peer = _peer_row(exp, best)["contender"]
    peer_rl = _peer_row(exp, best)["roofline_fraction"]
    rl = exp["roofline"]["gflops"]
    lim = exp.get("limits")
    limit_fwd = limit_sweep = ""
    if lim is not None:
        d_rate = exp["rate"]["draws"]
        n = exp["normals_per_seed"]
        limit_fwd = (
            f"; the draws alone ({n / 1e6:.3g} M normals per seed, jax's bits: threefry and one "
            f"erfinv each) run at {d_rate:.3g} seeds/s ({d_rate * n:.2g} normals/s), so matmuls "
            f"at the roofline plus those draws reach at most {lim['forward_ratio']:.2f}×"
            + (
                f", below the {target_ratio:g}× goal: out of reach with jax's bits on this host"
                if lim["forward_ratio"] < target_ratio
                else ""
            )
        )
        limit_sweep = (
            f"; matmuls at the roofline plus the draws alone ({d_rate * n:.2g} normals/s) "
            f"would be at most {lim['sweep_fraction']:.0%}"
        )
        pg = exp.get("products_gflops")
        if pg is not None and "products_fraction" in lim:
            limit_sweep += (
                f"; but XLA runs its three products slower in its scans (each alone, read "
                f"from stacks in memory as the backward reads the saved activations, and "
                f"summed): x·W at {pg['forward']:.0f}, g·Wᵀ at {pg['dx']:.0f} and xᵀ·g "
                f"(contracted over the batch) at {pg['dw']:.0f} GFLOP/s, and at those speeds "
                f"plus the draws the sweep would run at {lim['products_fraction']:.0%} of the "
                f"roofline (it measures {sw['roofline_fraction']:.0%}): the products set its "
                "pace"
            )
    goals = []

    def philox(r: dict[str, Any] | None, what: str) -> str:
        if r is None:
            return ""
        return f"; with philox4x32 keys {what} {r['ratio_to_best_peer']:.2f}×"

    for r, what, work in (
        (fw, "jinit forward (same work as the peers)", "forward std only"),
        (sf, "jinit.sweep(gradients=False)", "forward + 11 statistics per layer"),
    ):
        met = r["ratio_to_best_peer"] >= target_ratio
        where = (
            f"{work} at {r['roofline_fraction']:.0%} of the roofline, the {peer} at "
            f"{peer_rl:.0%}: the ceiling at 100 % is {r['ceiling_ratio']:.2f}×"
        )
        if r is fw:
            why = (
                f"{where}; the rest is drawing the weights' and inputs' normals (the peers' "
                "generators are cheaper per value)" + limit_fwd + philox(fwp, "the forward reaches")
            )
        else:  # the same forward pass as `fw`: what it adds is the statistics
            why = (
                f"the same forward with the peers' one std per layer runs at "
                f"{fw['ratio_to_best_peer']:.2f}× ({fw['seeds_per_s']:.3g} seeds/s); the other "
                f"10 statistics per layer take {1 - sf['seeds_per_s'] / fw['seeds_per_s']:.0%} "
                f"of the sweep's time; {where}" + limit_fwd
            )
        goals.append(
            C.goal(
                workload,
                f"{what} ≥ {target_ratio:g}× best peer",
                f"{r['ratio_to_best_peer']:.2f}× ({r['seeds_per_s']:.3g} vs {peer} {bp:.3g} "
                "seeds/s)",
                met,
                "" if met else why,
            )
        )
    goals.append(
        C.goal(
            workload,
            "jinit.sweep (forward + backward + statistics) vs the best forward-only peer",
            f"{sw['ratio_to_best_peer']:.2f}× ({sw['seeds_per_s']:.3g} seeds/s; 3× the peers' "
            f"matmul FLOPs, ceiling {sw['ceiling_ratio']:.2f}× at 100 % roofline)"
            + philox(swp, "it reaches"),
            None,
        )
    )
    if "torchbwd" in rows:
        tb = rows["torchbwd"]
        pr = exp["per_round_rates"]
        ratio = C.median([a / b for a, b in zip(pr["sweep"], pr["torchbwd"], strict=True)])
        met = None if full_ratio is None else ratio >= full_ratio
        target = f" ≥ {full_ratio:g}×" if full_ratio is not None else ""
        goals.append(
            C.goal(
                workload,
                f"jinit.sweep vs the torch loop doing forward + backward{target}",
                f"{ratio:.2f}× ({sw['seeds_per_s']:.3g} vs {tb['seeds_per_s']:.3g} seeds/s; "
                f"sweep at {sw['roofline_fraction']:.0%} of the roofline, the torch loop at "
                f"{tb['roofline_fraction']:.0%})",
                met,
                ""
                if met in (None, True)
                else f"at 100 % of the roofline the sweep would reach "
                f"{ratio / sw['roofline_fraction']:.2f}×; the rest is drawing the normals "
                "and the per-layer statistics",
            )
        )
    if roofline_goal is not None:
        met = sw["roofline_fraction"] >= roofline_goal
        extra = f"; with philox4x32 keys {swp['roofline_fraction']:.0%}" if swp else ""
        if "bare" in rows:
            extra += (
                f"; the same matmuls and draws as a bare jax forward + backward scan, no "
                f"statistics, run at {rows['bare']['roofline_fraction']:.0%}"
            )
        goals.append(
            C.goal(
                workload,
                f"jinit.sweep ≥ {roofline_goal:.0%} of the matmul roofline",
                f"{sw['roofline_fraction']:.0%} ({sw['gflops']:.0f} of {rl:.0f} GFLOP/s)",
                met,
                ""
                if met
                else "the rest is drawing the normals, the backward pass's element-wise work, "
                "the per-layer statistics and the scan's saved activations" + limit_sweep + extra,
            )
        )
    return goals


def roofline_note(rl: dict[str, Any], params: dict[str, Any]) -> str:
    """The Markdown note explaining the roofline and the FLOP counts."""
    w, b = params["width"], params["batch"]
    pg = rl["probes_gflops"]
    return (
        f"Roofline, measured in every round: median {rl['gflops']:.0f} GFLOP/s, the best per "
        f"round of four probes on ({b}, {w}) @ ({w}, {w}) float32 products: "
        f"{rl['stacked_products']} stacked in one call (jnp.matmul median {pg['jax']:.0f}, "
        f"np.matmul {pg['numpy']:.0f}) and chained in cache (one chunk's stack, "
        f"{rl['chained_stack']} products per step, multiplied again and again by an orthogonal "
        f"matrix: jax, sharded over the devices like the sweep, {pg['jax_chain']:.0f}; numpy "
        f"{pg['numpy_chain']:.0f}); roofline fractions and ratios are medians over rounds of the "
        "same-round quotients. Sweep "
        "FLOPs/seed = 3 · depth · 2·batch·width²; forward = depth · 2·batch·width². "
        "`× best peer at 100 % roofline` is the ratio a contender would reach if its matmuls "
        "ran at the roofline and everything else were free."
    )


def run(quick: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    C.use_all_cores()  # one CPU device per core, before anything starts jax
    machine = C.machine_info()
    if quick:
        params = dict(width=64, depth=3, batch=64, seeds=4, repeats=1, quick=True)
        peer_seeds = {"numpy": 4, "torch": 4}
    else:
        params = dict(width=512, depth=10, batch=1000, seeds=32, repeats=7, quick=False)
        peer_seeds = {"numpy": 32, "torch": 32}
    exp = mlp_experiment(
        workload="W1",
        width=params["width"],
        depth=params["depth"],
        batch=params["batch"],
        seeds=params["seeds"],
        peer_seeds=peer_seeds,
        repeats=params["repeats"],
    )
    rl = exp["roofline"]
    return {
        "name": "w1_textbook",
        "title": "W1 — the textbook experiment (MLP 512×10, 1000 samples, He normal, 32 seeds)",
        "machine": machine,
        "params": params,
        "rows": exp["rows"],
        "columns": COLUMNS,
        "goals": mlp_goals("W1", exp, 1.3, 0.75),
        "roofline": rl,
        "raw": {k: v for k, v in exp.items() if k not in ("rows", "roofline")},
        "notes": [roofline_note(rl, params)],
        "elapsed_s": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    return C.main_for(run, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
