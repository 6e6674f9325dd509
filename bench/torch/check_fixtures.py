"""Prove bench/torch/mobileutr.py is the official network: load mobileutr_seed0.weights and
compare against the stored eval outputs, stage outputs, train-mode loss and gradients.

  /usr/bin/python3 bench/torch/check_fixtures.py [--threads 2] [--dtype float32|float64] [--quiet]
                                                 [--tol 1e-4] [--abs-tol 1e-6] [--fixtures DIR]

Relative error = max|ours - fixture| / max|fixture|. Exits 1 on any failure.
With 1 thread PyTorch 1.13's own float32 train-mode BatchNorm backward is ~1e-3..1e-2 off
(float64 agrees with the fixture); use the fixture's 2 threads, or --dtype float64.
"""
import argparse
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import fixtures  # noqa: E402
from mobileutr import MobileUtr, UNet, count_params, mobileutr_l, segmentation_loss  # noqa: E402

# Conv biases feeding straight into a train-mode BatchNorm: exact gradient 0 (fixture README).
ZERO_GRAD_BIASES = (
    ["patch_embeddings.stem.0.bias"]
    + [f"patch_embeddings.layer{i}.up.0.bias" for i in (1, 2, 3)]
    + [f"{m}.conv.{j}.bias" for m in ("expend_dims", "reduce_dims", "Up_conv4", "Up_conv3", "Up_conv2")
       for j in (0, 3)]
    + [f"Up{i}.up.1.bias" for i in (3, 2, 1)])


class Report:
    def __init__(self, tol, abs_tol, quiet=False):
        self.tol, self.abs_tol, self.failures, self.rows = tol, abs_tol, [], 0
        self.quiet = quiet

    def compare(self, name, ours, ref, absolute=False):
        ours, ref = ours.detach().double(), ref.double()
        if ours.shape != ref.shape:
            self.failures.append(name)
            print(f"FAIL {name}: shape {list(ours.shape)} != {list(ref.shape)}")
            return
        err = (ours - ref).abs().max().item()
        scale = ref.abs().max().item()
        if absolute:
            ok, val, kind = err <= self.abs_tol, err, "abs"
        else:
            val = err / scale if scale > 0 else err
            ok, kind = val <= self.tol, "rel"
        self.rows += 1
        if not ok:
            self.failures.append(name)
        if not ok or not self.quiet:
            print(f"{'ok  ' if ok else 'FAIL'} {name:60s} {kind} {val:.2e}  (max|ref| {scale:.3e})")

    def check(self, name, cond, detail=""):
        self.rows += 1
        if not cond:
            self.failures.append(name)
        print(f"{'ok  ' if cond else 'FAIL'} {name} {detail}")


def load_model(weights, drop_path, dtype):
    model = MobileUtr(drop_path=drop_path)
    model.load_state_dict(weights, strict=True)
    return model.to(dtype)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2, help="fixtures were made with 2")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--abs-tol", type=float, default=1e-6)
    ap.add_argument("--fixtures", default=fixtures.FIXTURES)
    ap.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                    help="float64 checks the semantics independently of PyTorch's float32 summation order")
    a = ap.parse_args()
    dt = getattr(torch, a.dtype)
    torch.set_num_threads(a.threads)
    rep = Report(a.tol, a.abs_tol, a.quiet)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {a.dtype}, fixtures {a.fixtures}")

    weights, _ = fixtures.load_bundle("mobileutr_seed0.weights", a.fixtures)
    probe = MobileUtr()
    ours = {k: list(v.shape) for k, v in probe.state_dict().items()}
    ref = {k: list(v.shape) for k, v in weights.items()}
    rep.check("state_dict keys+shapes", ours == ref, f"({len(ours)} ours, {len(ref)} fixture)")
    rep.check("params MobileUtr", count_params(probe) == 1390305, str(count_params(probe)))
    n = count_params(mobileutr_l())
    rep.check("params MobileUtr-L", n == 6209217, str(n))
    n = count_params(UNet())
    rep.check("params UNet", n == 34527041, str(n))

    # eval, 64x64, with stage taps
    io, meta = fixtures.load_bundle("mobileutr_seed0.io64", a.fixtures)
    model = load_model(weights, 0.1, dt).eval()
    acts = {}
    for name in meta["taps"]:
        model.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: acts.__setitem__(name, out.detach().clone()))
    with torch.no_grad():
        out = model(io["input"].to(dt))
    for name in meta["taps"]:
        rep.compare(f"io64 act.{name}", acts[name], io[f"act.{name}"])
    rep.compare("io64 output", out, io["output"])

    # eval, 256x256
    io, _ = fixtures.load_bundle("mobileutr_seed0.io256", a.fixtures)
    model = load_model(weights, 0.1, dt).eval()
    with torch.no_grad():
        out = model(io["input"].to(dt))
    rep.compare("io256 output", out, io["output"])

    # train mode (batch-stat BN), DropPath off: loss + all gradients
    tr, meta = fixtures.load_bundle("mobileutr_seed0.train64", a.fixtures)
    model = load_model(weights, 0.0, dt).train()
    logits = model(tr["input"].to(dt))
    loss = segmentation_loss(logits, tr["target"].to(dt))
    loss.backward()
    rep.compare("train64 logits", logits, tr["logits"])
    rep.compare("train64 loss", loss.reshape(1), tr["loss"])
    print(f"     loss ours {loss.item():.8f} fixture {tr['loss'].item():.8f} (float64 ref 0.91892477)")
    params = dict(model.named_parameters())
    grads = sorted(k[5:] for k in tr if k.startswith("grad."))
    rep.check("train64 grad set", set(grads) == set(params), f"({len(grads)} fixture, {len(params)} params)")
    worst = (0.0, "")
    for name in grads:
        g = params[name].grad
        absolute = name in ZERO_GRAD_BIASES
        rep.compare(f"grad.{name}", g, tr[f"grad.{name}"], absolute=absolute)
        if not absolute:
            ref_g = tr[f"grad.{name}"].double()
            rel = ((g.double() - ref_g).abs().max() / ref_g.abs().max()).item()
            worst = max(worst, (rel, name))
    print(f"     worst relative gradient error: {worst[0]:.2e} ({worst[1]})")

    if rep.failures:
        more = f", ... (+{len(rep.failures) - 8} more)" if len(rep.failures) > 8 else ""
        print(f"FAILED {len(rep.failures)}/{rep.rows}: {', '.join(rep.failures[:8])}{more}")
        return 1
    print(f"PASSED all {rep.rows} checks (tol {a.tol} rel, {a.abs_tol} abs for {len(ZERO_GRAD_BIASES)} biases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
