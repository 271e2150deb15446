"""Plots of the SoPo experiments: suite pass rate and foot skating against steps; the artist's win rate against picks.

    plot_steps(Path("runs/sopo_curves"), Path("docs/sopo_steps.png"))    # sopo_experiment.py run --curve-steps
    plot_taste(Path("runs/taste"), Path("docs/sopo_taste.png"))          # sopo_experiment.py taste --pick-counts
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

COLOURS = {"sft": "tab:green", "offline-dpo": "tab:red", "online-dpo": "tab:orange", "sopo": "tab:blue"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves(out: Path) -> tuple[dict | None, dict[tuple[str, str], list[dict]]]:
    """(base suite scores, {(source, method label): [curve points of its seed-0-like runs, by step]})."""
    res = Path(out) / "results"
    base = json.loads((res / "base-suite.json").read_text()) if (res / "base-suite.json").exists() else None
    found: dict[tuple[str, str], list[dict]] = {}
    for f in sorted(res.glob("*.json")):
        obj = json.loads(f.read_text())
        if obj.get("curve"):
            found.setdefault((obj["source"], obj["method"]), []).append(obj)
    return base, found


def plot_steps(out: Path, path: Path, title: str = "") -> Path:
    """Suite pass rate, the evaluator's FID (when the runs were scored by it) and the foot-skate share of the
    suite's motions against fine-tuning steps; one line per (source, method), the base at step 0; bands: 95%
    interval (bootstrap over prompts for the suite, over evaluation repeats for FID)."""
    from server.align.experiment import method_name

    plt = _plt()
    base, found = curves(out)
    if not found:
        raise ValueError(f"no run in {out}/results has a curve (sopo_experiment.py run --curve-steps ...)")
    base_fid = _base_fid(out)
    panels = [("overall", 100.0, "suite pass rate %"), ("fid", 1.0, "FID (evaluator v2)"),
              ("skate_ratio", 100.0, "foot skate % (suite motions)")]
    if not any("fid" in (c["suite"] or {}) for runs in found.values() for run in runs for c in run["curve"]):
        panels = [p for p in panels if p[0] != "fid"]
    sources = sorted({s for s, _ in found})
    fig, axes = plt.subplots(len(sources), len(panels), figsize=(5 * len(panels), 3.6 * len(sources)), squeeze=False)
    for row, source in zip(axes, sources):
        for (src, label), runs in sorted(found.items()):
            if src != source:
                continue
            method = label.partition("@")[0]
            for k, (key, scale, _ylabel) in enumerate(panels):
                pts = [(c["step"], *c["suite"][key]) for run in runs for c in run["curve"] if key in (c["suite"] or {})]
                b = {"overall": base and base["overall"], "skate_ratio": base and base["physics"]["skate_ratio"],
                     "fid": base_fid}[key]
                if b is not None and pts:
                    pts.append((0, *b))
                if not pts:
                    continue
                steps = sorted({p[0] for p in pts})
                m = [scale * np.mean([p[1] for p in pts if p[0] == s]) for s in steps]
                lo = [scale * np.mean([p[2] for p in pts if p[0] == s]) for s in steps]
                hi = [scale * np.mean([p[3] for p in pts if p[0] == s]) for s in steps]
                colour = COLOURS.get(method)
                row[k].plot(steps, m, "o-", color=colour, lw=1.4, ms=3, label=method_name(label))
                row[k].fill_between(steps, lo, hi, color=colour, alpha=0.12, lw=0)
        for ax, (_key, _scale, ylabel) in zip(row, panels):
            ax.set_ylabel(ylabel if ax is not row[0] else f"{source} preferences\n{ylabel}")
            ax.set_xlabel("fine-tuning step")
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=7)
    return _save(fig, plt, path, title)


def _base_fid(out: Path) -> list[float] | None:
    """The base's FID [mean, low, high] over the evaluation repeats of results/base-s0.json (None if unscored)."""
    from server.eval.metrics import mean_and_interval

    f = Path(out) / "results" / "base-s0.json"
    fid = (json.loads(f.read_text()).get("row") or {}).get("metrics", {}).get("fid", []) if f.exists() else []
    if not len(fid):
        return None
    m, half = mean_and_interval(fid)
    return [m, m - half, m + half]


def _save(fig, plt, path: str | Path, title: str | None) -> Path:
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _label(row: dict) -> str:
    return row["method"] + ("@" + row["setting"] if row.get("setting") else "")


def plot_taste(out: Path, path: Path, title: str = "") -> Path:
    """The simulated artist's held-out win rate (suite prompts and test captions) against the number of picks,
    one line per method; bars: 95% interval (bootstrap over prompts, or over seeds when there are several)."""
    from server.align.experiment import method_name
    from server.eval import metrics

    plt = _plt()
    rows = [json.loads(f.read_text()) for f in sorted((Path(out) / "results").glob("*.json")) if f.name != "base.json"]
    if not rows:
        raise ValueError(f"no taste runs in {out}/results")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, key, name in ((axes[0], "win_suite", "suite prompts"), (axes[1], "win_test", "test captions")):
        for label in sorted({_label(r) for r in rows}):
            counts = sorted({r["picks"] for r in rows if _label(r) == label})
            m, err = [], []
            for c in counts:
                runs = [r[key] for r in rows if _label(r) == label and r["picks"] == c]
                if len(runs) == 1:
                    m.append(100 * runs[0][0])
                    err.append((100 * (runs[0][0] - runs[0][1]), 100 * (runs[0][2] - runs[0][0])))
                else:
                    mean, ci = metrics.mean_and_interval([x[0] for x in runs])
                    m.append(100 * mean)
                    err.append((100 * ci, 100 * ci))
            ax.errorbar(counts, m, yerr=np.array(err).T, fmt="o-", capsize=3,
                        color=COLOURS.get(label.partition("@")[0]) if "@" not in label else None,
                        label=method_name(label))
        ax.axhline(50, color="grey", lw=0.8, ls="--")
        ax.axhline(65, color="grey", lw=0.8, ls=":")
        ax.set_title(f"held out: {name}", fontsize=10)
        ax.set_xlabel("artist's picks used")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("artist prefers fine-tuned over base, %")
    axes[0].legend(fontsize=7)
    return _save(fig, plt, path, title)
