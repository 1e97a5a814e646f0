#!/usr/bin/env python3
"""Developer script (NOT run by CI): golden values for fusekit's preference losses from TRL itself.

    python3 -m venv /tmp/trl-venv && /tmp/trl-venv/bin/pip install "trl==0.28.0" torch numpy
    /tmp/trl-venv/bin/python tests/loss/golden/make_trl_golden.py > tests/data/loss/trl_golden.json

TRL 0.28.0 is used because its `DPOTrainer.dpo_loss`, `CPOTrainer.cpo_loss` and
`ORPOTrainer.odds_ratio_loss` are plain methods on per-sequence log-probs, so they can be called on a
stand-in `self` that carries only the attributes they read (no model, no dataset). Notes:
* `ipo`, `simpo` and `orpo` take *average* log-probs in TRL (the trainers divide by the completion
  length before calling the loss); we feed summed log-probs / lengths through autograd, so the saved
  gradients are w.r.t. the summed log-probs, as fusekit's are.
* `bco_pair` in 0.28 subtracts a running mean delta of the rewards; TRL v1 removed it. The stand-in's
  running mean is 0, which is the v1 formula fusekit implements.
* `sigmoid` with label_smoothing > 0 is 0.28's conservative DPO (fusekit `dpo{.label_smoothing}`).
* `aot` / `aot_unpaired` couple the batch through sorting; their saved `losses` are in rank order.
* LN-DPO (`sigmoid_norm`) exists only in TRL >= 1.x's model-level `_compute_loss`; it is covered by the
  spec vectors instead.
Gradients are of the batch-mean loss (torch autograd, float64).
"""
import json
import sys
import types

import torch
import importlib

_iu = importlib.import_module("trl.import_utils")

_iu.is_weave_available = lambda: False  # a stray 'weave' metadata entry breaks the import otherwise
from trl.trainer.dpo_trainer import DPOTrainer, FDivergenceType
from trl.experimental.cpo.cpo_trainer import CPOTrainer
from trl.experimental.orpo.orpo_trainer import ORPOTrainer

torch.manual_seed(0)


class _Running:
    mean = 0.0

    def update(self, _):
        pass


def stand_in(beta, label_smoothing=0.0, discopop_tau=0.05, loss_type="sigmoid", simpo_gamma=0.5):
    return types.SimpleNamespace(
        accelerator=types.SimpleNamespace(device="cpu"),
        reference_free=False,
        f_divergence_type=FDivergenceType.REVERSE_KL,
        f_divergence_params={},
        beta=beta,
        label_smoothing=label_smoothing,
        args=types.SimpleNamespace(discopop_tau=discopop_tau),
        running=_Running(),
        loss_type=loss_type,
        simpo_gamma=simpo_gamma,
        alpha=0.0,
    )


def batch(B, seed):
    g = torch.Generator().manual_seed(seed)
    lc = torch.randint(3, 60, (B,), generator=g).double()
    lr = torch.randint(3, 60, (B,), generator=g).double()
    pc = -lc * (0.5 + 2 * torch.rand(B, generator=g, dtype=torch.float64))
    pr = -lr * (0.5 + 2 * torch.rand(B, generator=g, dtype=torch.float64))
    rc = pc + torch.randn(B, generator=g, dtype=torch.float64) * 3
    rr = pr + torch.randn(B, generator=g, dtype=torch.float64) * 3
    return pc, pr, rc, rr, lc, lr


def run(kind, params, pc, pr, rc, rr, lc, lr):
    pc = pc.clone().requires_grad_(True)
    pr = pr.clone().requires_grad_(True)
    if kind in ("sigmoid", "robust", "hinge", "exo_pair", "nca_pair", "bco_pair", "sppo_hard", "discopop",
                "apo_zero", "apo_down", "aot", "aot_unpaired"):
        s = stand_in(params["beta"], params.get("label_smoothing", 0.0), params.get("tau", 0.05))
        losses, cr, rj = DPOTrainer.dpo_loss(s, pc, pr, rc, rr, loss_type=kind)
    elif kind == "ipo":
        s = stand_in(params["beta"])
        losses, cr, rj = DPOTrainer.dpo_loss(s, pc / lc, pr / lr, rc / lc, rr / lr, loss_type="ipo")
        cr, rj = params["beta"] * (pc - rc).detach(), params["beta"] * (pr - rr).detach()  # TRL logs summed
    elif kind == "simpo":
        s = stand_in(params["beta"], params.get("label_smoothing", 0.0), loss_type="simpo",
                     simpo_gamma=params["gamma"])
        losses, cr, rj = CPOTrainer.cpo_loss(s, pc / lc, pr / lr)
    elif kind == "orpo":
        s = stand_in(params["beta"])
        out = ORPOTrainer.odds_ratio_loss(s, pc / lc, pr / lr)
        losses, cr, rj = -out[0], out[1], out[2]  # TRL returns beta*logsigmoid(log_odds); the loss is its negative
    else:
        raise ValueError(kind)
    loss = losses.mean()
    loss.backward()
    return {
        "loss": loss.item(),
        "losses": losses.detach().tolist(),
        "grad_chosen": pc.grad.tolist(),
        "grad_rejected": pr.grad.tolist(),
        "rewards_chosen": cr.detach().tolist(),
        "rewards_rejected": rj.detach().tolist(),
    }


CASES = [
    ("sigmoid", {"beta": 0.1}),
    ("sigmoid", {"beta": 0.5, "label_smoothing": 0.1}),
    ("robust", {"beta": 0.2, "label_smoothing": 0.1}),
    ("hinge", {"beta": 0.3}),
    ("ipo", {"beta": 0.1}),
    ("exo_pair", {"beta": 0.2, "label_smoothing": 1e-3}),
    ("nca_pair", {"beta": 0.2}),
    ("bco_pair", {"beta": 0.1}),
    ("sppo_hard", {"beta": 0.5}),
    ("discopop", {"beta": 0.1, "tau": 0.05}),
    ("apo_zero", {"beta": 0.2}),
    ("apo_down", {"beta": 0.2}),
    ("simpo", {"beta": 2.0, "gamma": 1.0}),
    ("simpo", {"beta": 2.5, "gamma": 1.375, "label_smoothing": 0.1}),
    ("orpo", {"beta": 0.1}),
    # appended later (seeds of the cases above are unchanged); TRL's per-pair `losses` are in sorted order
    ("aot", {"beta": 0.1}),
    ("aot", {"beta": 0.3, "label_smoothing": 0.1}),
    ("aot_unpaired", {"beta": 0.2, "label_smoothing": 0.05}),
]

out = {"generator": "tests/loss/golden/make_trl_golden.py", "trl": __import__("trl").__version__,
       "torch": torch.__version__, "cases": []}
for i, (kind, params) in enumerate(CASES):
    for j, B in enumerate((4, 7)):
        pc, pr, rc, rr, lc, lr = batch(B, 1000 * i + j)
        res = run(kind, params, pc, pr, rc, rr, lc, lr)
        out["cases"].append({"loss_type": kind, "params": params,
                             "inputs": {"policy_chosen": pc.tolist(), "policy_rejected": pr.tolist(),
                                        "ref_chosen": rc.tolist(), "ref_rejected": rr.tolist(),
                                        "len_chosen": lc.tolist(), "len_rejected": lr.tolist()},
                             "expected": res})
json.dump(out, sys.stdout, indent=1)
sys.stdout.write("\n")
