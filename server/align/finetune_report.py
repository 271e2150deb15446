"""The fine-tuning report: evaluator metrics before/after, training curves, a Markdown summary.

    rows = evaluate_before_after(base_model, tuned_model, info, EvalSettings(...))
    plot_curves(history, out / "curves.png")
    write_report(out, summary, history, rows)

Evaluation is the team's protocol (`server/eval/evaluation.py`, Guo et al.) on the corpus's test
split, both models scored with the same captions, lengths and noise seeds (paired), with
MultiModality off by default (it costs 30 generations per caption).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from server.eval import evaluation
from server.align.preference_data import CachedTextConditioner, describe_none_good

CURVE_KEYS = (("loss", "loss"), ("rewards/margins", "reward margin (implicit)"),
              ("frac_loser_above_tau", "fraction of losers with r >= tau"))


@dataclass
class EvalSettings:
    evaluator: Path
    corpus: Path
    text_cache: object  # a TextCache (texts are looked up there; MiniLM only for missing ones)
    repeats: int = 2
    max_clips: int | None = None
    seed: int = 0
    split: str = "test"
    r_batch: int = 32
    batch_size: int = 32
    device: str | None = None


class _Progress:
    def __init__(self, log):
        self.log = log

    def __call__(self, it, desc):
        for i, x in enumerate(it):
            if self.log is not None:
                self.log(f"evaluating {desc}: repeat {i + 1}")
            yield x


def in_memory_generator(model, info, device, name: str, cache):
    """A `MotionGenerator` around an already loaded model, reading text embeddings from `cache`."""
    from server.model.inference import MotionGenerator

    gen = MotionGenerator(model, info, device, Path(name))
    gen.model_id = name
    gen.text = CachedTextConditioner(cache, device)
    return gen


def load_eval_context(settings: EvalSettings):
    """(evaluator, test set, evaluator text embedder) for `settings`."""
    from server.data.corpus import Corpus
    from server.eval.evaluator import Evaluator

    evaluator = Evaluator.load(settings.evaluator, settings.device)
    corpus = Corpus(settings.corpus)
    test = evaluation.load_test_set(corpus, settings.split, max_clips=settings.max_clips, seed=settings.seed,
                                    r_batch=settings.r_batch)
    test.r_batch = max(2, min(settings.r_batch, len(set(test.groups.tolist()))))
    texts = evaluation._TextEmbedder(evaluator, [c for caps in test.captions for c in caps], cache=settings.text_cache)
    return evaluator, test, texts


def evaluate_models(models: list[tuple[str, object]], info, settings: EvalSettings, device, log=None,
                    context=None) -> list[dict]:
    """Evaluator rows for [(name, TextToMotion), ...], all with the same captions and seeds."""
    evaluator, test, texts = context or load_eval_context(settings)
    rows = []
    for name, model in models:
        gen = in_memory_generator(model, info, device, name, settings.text_cache)
        fn = evaluation.generator_fn(gen, settings.batch_size)
        rows.append(evaluation.evaluate_generator(name, evaluator, fn, test, settings.repeats, settings.seed,
                                                  mm_repeats=0, mm_captions=0, texts=texts,
                                                  progress=_Progress(log)))
    for row in rows:
        row["clips"] = len(test)
        row["r_batch"] = test.r_batch
    return rows


def evaluate_result(result, evaluator: Path, corpus: Path, text_cache_path: Path | None, repeats: int,
                    max_clips: int | None = None, seed: int = 0, log=None) -> tuple[list[dict] | None, str]:
    """Before/after rows for a `FinetuneResult` kept in memory (keep_models=True), or (None, why not)."""
    from server.data.corpus import Corpus
    from server.align.preference_training import load_text_cache

    if repeats <= 0 or result.policy is None:
        return None, "Before/after metrics not computed (--eval-repeats 0)."
    if not (Path(evaluator) / "model.safetensors").is_file():
        return None, f"No evaluator at {evaluator}: before/after metrics skipped."
    if not (Path(corpus) / "clips.jsonl").is_file():
        return None, f"No corpus at {corpus}: before/after metrics skipped."
    c = Corpus(corpus)
    texts = sorted({cap.text for i in c.indices("test") for cap in c.clips[i].captions})
    if not texts:
        return None, f"The corpus {corpus} has no test split: before/after metrics skipped."
    cache = load_text_cache(result.policy.cfg.text_encoder, text_cache_path, texts)
    device = result.policy.feature_mean.device
    settings = EvalSettings(evaluator=Path(evaluator), corpus=Path(corpus), text_cache=cache, repeats=repeats,
                            max_clips=max_clips, seed=seed, device=str(device))
    from server.model.checkpoint import load_checkpoint
    _, info = load_checkpoint(result.checkpoint, "cpu")
    if log is not None:
        log(f"evaluating base and fine-tuned on {corpus} (test split, {repeats} repeats) ...")
    rows = evaluate_models([("base", result.reference), (result.checkpoint.name, result.policy)], info, settings,
                           device)
    return rows, ""


def relative_change(before: dict, after: dict, metric: str) -> float | None:
    b, a = before["summary"].get(metric), after["summary"].get(metric)
    if not b or not a or b[0] == 0:
        return None
    return (a[0] - b[0]) / abs(b[0])


def plot_curves(history: list[dict], path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CURVE_KEYS), figsize=(5 * len(CURVE_KEYS), 3.6))
    steps = [h["step"] for h in history]
    for ax, (key, label) in zip(axes, CURVE_KEYS):
        vals = [h.get(key, np.nan) for h in history]
        if not np.all(np.isnan(np.asarray(vals, dtype=float))):
            ax.plot(steps, vals, "o-" if len(steps) < 30 else "-", lw=1.2, label=key)
        if key == "rewards/margins":
            for extra in ("rewards/chosen", "rewards/rejected"):
                ev = [h.get(extra, np.nan) for h in history]
                if not np.all(np.isnan(np.asarray(ev, dtype=float))):
                    ax.plot(steps, ev, lw=0.8, alpha=0.7, label=extra)
            ax.axhline(0.0, color="grey", lw=0.5)
            ax.legend(fontsize=7)
        if key == "frac_loser_above_tau":
            ax.set_ylim(-0.05, 1.05)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _fmt(v, digits=4):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def write_report(out: Path, summary: dict, history: list[dict], rows: list[dict] | None, note: str = "") -> Path:
    """out/report.md (+ curves.png, eval.json); returns the Markdown path."""
    out = Path(out)
    plot_curves(history, out / "curves.png", f"{summary['method']} on {summary.get('base_name', '')}")
    hp = summary["hyperparameters"]
    lines = [f"# Fine-tuning report: {out.name}", "",
             f"- method: **{summary['method']}**, base `{summary['base']}` (family {summary['family']})",
             f"- {hp['steps']} steps x batch {_batch(summary)}, AdamW lr {hp['lr']:g} (warm-up {hp['warmup']}, "
             f"cosine), beta {hp['beta']:g}, tau {_tau(summary)}, C {hp['C']:g}, T*w(t) = {hp['scale']:g}, "
             f"K {summary['k']}, online sampling {summary['sample_steps']} steps at guidance {summary['guidance']:g}",
             f"- picks: {summary['number_of_picks']} from `{summary['picks_db']}`" if summary.get("picks_db")
             else "- picks: none", f"- corpus: `{summary['corpus']}`" if summary.get("corpus") else "- corpus: none",
             f"- items used: {json.dumps(summary['items'])}",
             *([f"- {describe_none_good(summary['none_good'], summary['method'], bool(summary.get('corpus')))}"]
               if (summary.get("none_good") or {}).get("picks") else []),
             f"- device {summary['device']} x {summary['world_size']}, {summary['elapsed_s']:.0f} s", ""]
    if note:
        lines += [note, ""]
    final = summary.get("final") or {}
    keys = ["loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
            "frac_loser_above_tau", "reward_model/loser", "sim_min", "beta_w"]
    lines += ["## Final training metrics (mean of the last logging window)", "",
              "| " + " | ".join(k for k in keys if k in final) + " |",
              "|" + "---|" * sum(k in final for k in keys),
              "| " + " | ".join(_fmt(final[k]) for k in keys if k in final) + " |", "",
              "![curves](curves.png)", ""]
    if rows:
        before, after = rows[0], rows[-1]
        lines += ["## Evaluator metrics before / after", "",
                  f"Test split, {rows[0].get('clips', '?')} clips, R-precision batches of {rows[0].get('r_batch', '?')}, "
                  f"{len(rows[0]['metrics']['top1'])} repeats (mean ± 95% interval); same captions and seeds for "
                  "both rows.", "", evaluation.markdown_table(rows), ""]
        mm = relative_change(before, after, "mm_dist")
        top1 = relative_change(before, after, "top1")
        fid = relative_change(before, after, "fid")
        lines += [f"MM-Dist change {_pct(mm)} (lower is better), R-precision top-1 change {_pct(top1)}, "
                  f"FID change {_pct(fid)}.", ""]
        (out / "eval.json").write_text(json.dumps(rows, indent=1))
    else:
        lines += ["## Evaluator metrics", "", "Not computed (--eval-repeats 0, or no evaluator/corpus).", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _tau(summary: dict) -> str:
    """tau as given, or as calibrated on the reward's distribution (--tau-quantile)."""
    cal = summary.get("tau_calibration")
    if not cal:
        return f"{summary['hyperparameters']['tau']:g}"
    return (f"{cal['tau']:.4f} (the {100 * cal['quantile']:g}th percentile of the rewards of {cal['samples']} reference "
            f"samples on {cal['captions']} training captions)")


def _batch(summary: dict) -> str:
    """The batch used, and the one asked for when there were fewer usable pairs."""
    asked = summary["hyperparameters"]["batch_size"]
    used = summary.get("batch_size", asked)
    return str(used) if used == asked else f"{used} (asked {asked}; fewer usable pairs)"


def _pct(x):
    return "-" if x is None else f"{100 * x:+.2f}%"
