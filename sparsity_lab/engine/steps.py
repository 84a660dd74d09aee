"""One masked optimisation step, shared by `MaskedTrainer` and `BatchedTrainer` (docs/methods.md §2).

Order inside a step (the same for every trainer, eager or CUDA-graph replayed):
  forward under autocast -> loss.backward() -> grad *= mask (so clipping ignores pruned entries)
  -> clip to the global L2 norm -> optimizer.step() -> weight *= mask -> accumulate loss/correct on device.
With masked gradients and zero weights, SGD momentum and Adam moments of pruned entries stay exactly 0;
re-multiplying the weights after the step makes "pruned stays exactly zero" hold for any optimizer.
No step reads a value back to the host: loss sums and correct counts live on the device until
`end_epoch`, which synchronises once; `divergences` (once per epoch) reads the per-unit count of steps
whose running loss sum stayed finite and whether every weight is finite (engine/divergence.py).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import torch
from torch import Tensor

from .divergence import Divergence, divergences

# forward_loss(x, y) -> (scalar loss to backpropagate, per-unit mean loss, per-unit correct count);
# a "unit" is the single model (scalars) or one member of a batched ensemble (vectors of length N).
ForwardLoss = Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]
# make_batch(*inputs) -> (x, y): turns a step's inputs (e.g. index tensors) into the batch; it runs inside
# the captured graph, so it must be pure device work (no host random numbers, no host copies).
MakeBatch = Callable[..., tuple[Tensor, Tensor]]


def _identity_batch(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    return x, y


class StepRunner:
    """Runs masked training steps eagerly or by replaying a captured CUDA graph."""

    #: Count finite-loss steps on the device (divergence detection, engine/divergence.py); off only for
    #: benchmarks/bench_divergence.py, which times the engine with and without it.
    track_divergence: bool = True

    def __init__(
        self,
        *,
        params: list[Tensor],
        optimizer: torch.optim.Optimizer,
        forward_loss: ForwardLoss,
        clip: Callable[[list[Tensor]], None] | None,
        state_tensors: Callable[[], list[Tensor]],
        autocast: Callable[[], AbstractContextManager],
        units: tuple[int, ...],
        device: torch.device,
        cuda_graphs: bool = False,
        warmup_steps: int = 3,
        make_batch: MakeBatch = _identity_batch,
    ) -> None:
        if cuda_graphs and device.type != "cuda":
            raise ValueError(f"cuda_graphs=True needs a CUDA device, got device={device}")
        self.params = params
        self.optimizer = optimizer
        self.forward_loss = forward_loss
        self.clip = clip
        self.state_tensors = state_tensors
        self.autocast = autocast
        self.cuda_graphs = cuda_graphs
        self.warmup_steps = warmup_steps
        self.make_batch = make_batch
        self.masked: list[Tensor] = []
        self.masks: list[Tensor] = []
        self.loss_sum = torch.zeros(units, device=device, dtype=torch.float32)
        self.correct = torch.zeros(units, device=device, dtype=torch.int64)
        self.finite_steps = torch.zeros(units, device=device, dtype=torch.int64)
        self.steps_in_epoch = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._static: tuple[Tensor, ...] | None = None
        self._addresses: list[int] = []  # storage of every state tensor when the graph was captured

    # ----------------------------------------------------------------- masks
    def set_masks(self, pairs: list[tuple[Tensor, Tensor]]) -> None:
        """Install (parameter, float mask shaped and strided like it) pairs and apply them to the weights.

        The same parameters as before keep their mask tensors (values copied in place) so a captured graph
        stays valid; a different set of masked parameters drops the graph.
        """
        params = [p for p, _ in pairs]
        if len(params) == len(self.masked) and all(a is b for a, b in zip(params, self.masked)):
            for dst, (_, mask) in zip(self.masks, pairs):
                dst.copy_(mask)
        else:
            self.masked, self.masks = params, [m for _, m in pairs]
            self.invalidate()
        self.enforce_masks()

    @torch.no_grad()
    def enforce_masks(self) -> None:
        """weight *= mask for every masked parameter (one multi-tensor kernel launch)."""
        if self.masked:
            torch._foreach_mul_(self.masked, self.masks)

    def invalidate(self) -> None:
        """Forget the captured graph (after optimizer state or parameter storage was replaced)."""
        self._graph, self._static = None, None

    # ----------------------------------------------------------------- epoch accumulators
    def begin_epoch(self) -> None:
        if self._graph is not None and self._addresses != self._state_addresses():
            self.invalidate()  # a parameter or buffer was given new storage: the graph would write stale memory
        self.loss_sum.zero_()
        self.correct.zero_()
        self.finite_steps.zero_()
        self.steps_in_epoch = 0

    def end_epoch(self, num_examples: int) -> tuple[list[float] | float, list[float] | float]:
        """Mean loss and accuracy over the epoch (the epoch's only host synchronisation)."""
        loss = (self.loss_sum / num_examples).tolist()
        acc = (self.correct.double() / num_examples).tolist()
        return loss, acc

    @torch.no_grad()
    def divergences(self, epoch: int, num_examples: int = 1, limit: float | None = None) -> list[Divergence]:
        """The units whose loss or weights became non-finite this epoch, or whose mean loss exceeds ``limit``
        (one host read-back, per epoch)."""
        shape = tuple(self.loss_sum.shape)
        flags = [torch.isfinite(t).reshape(*shape, -1).all(-1) for t in self.state_tensors() if t.is_floating_point()]
        ok = torch.stack(flags).all(0) if flags else torch.ones(shape, dtype=torch.bool, device=self.loss_sum.device)
        packed = torch.stack([self.finite_steps.double(), self.loss_sum.double(), ok.double()]).reshape(3, -1)
        finite, losses, fine = packed.tolist()
        return divergences(epoch, [int(f) for f in finite], losses, [bool(f) for f in fine],
                           max(1, self.steps_in_epoch), batched=bool(shape), num_examples=num_examples,
                           limit=limit)

    # ----------------------------------------------------------------- the step
    def _body(self, *inputs: Tensor) -> None:
        x, y = self.make_batch(*inputs)
        with self.autocast():
            loss, unit_loss, unit_correct = self.forward_loss(x, y)
        loss.backward()
        with torch.no_grad():
            if self.masked:
                pairs = [(p.grad, m) for p, m in zip(self.masked, self.masks) if p.grad is not None]
                if pairs:
                    torch._foreach_mul_([g for g, _ in pairs], [m for _, m in pairs])
            if self.clip is not None:
                self.clip(self.params)
        self.optimizer.step()
        with torch.no_grad():
            self.enforce_masks()
            self.loss_sum.add_(unit_loss.detach().float() * y.shape[-1])
            self.correct.add_(unit_correct)
            if self.track_divergence:
                self.finite_steps.add_(torch.isfinite(self.loss_sum))  # = index of the first diverged step

    def step(self, *inputs: Tensor) -> None:
        """One training step on `make_batch(*inputs)`; replays the CUDA graph when the input shapes match the
        captured ones (a final short batch runs eagerly)."""
        self.steps_in_epoch += 1
        if self.cuda_graphs and self._graph is None:
            self._capture(inputs)
        static = self._static
        if static is not None and all(a.shape == b.shape for a, b in zip(inputs, static)):
            for buffer, value in zip(static, inputs):
                buffer.copy_(value)
            self._graph.replay()
            return
        self.optimizer.zero_grad(set_to_none=True)
        self._body(*inputs)

    def _capture(self, inputs: tuple[Tensor, ...]) -> None:
        """Capture `_body` for these input shapes without changing the training state.

        Warm-up steps (needed before capture: cuDNN autotuning, lazy optimizer state) do run on real data,
        so every state tensor is snapshotted first and restored afterwards; optimizer state created by the
        warm-up is zeroed, which is exactly the fresh state (SGD: buf = 0*m + g = g; Adam: zero moments,
        step 0).
        """
        snapshot = {id(t): (t, t.detach().clone()) for t in self._all_state()}
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.warmup_steps):
                self.optimizer.zero_grad(set_to_none=True)
                self._body(*inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.optimizer.zero_grad(set_to_none=True)
        static = tuple(t.clone() for t in inputs)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._body(*static)
        with torch.no_grad():
            for t in self._all_state():
                if id(t) in snapshot:
                    t.copy_(snapshot[id(t)][1])
                else:
                    t.zero_()
        self._graph, self._static = graph, static
        self._addresses = self._state_addresses()

    def _state_addresses(self) -> list[int]:
        return [t.data_ptr() for t in self._all_state()]

    def _all_state(self) -> list[Tensor]:
        opt_state = [
            v for state in self.optimizer.state.values() for v in state.values() if isinstance(v, Tensor)
        ]
        return [*self.state_tensors(), *opt_state, self.loss_sum, self.correct, self.finite_steps]
