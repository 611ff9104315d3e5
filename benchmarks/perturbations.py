"""Benchmark every perturbation family on the real PAWS-X dev sets (7 languages x 2000 pairs).

    python benchmarks/perturbations.py [--json PATH] [--data DIR] [--stats-rows N]

Builds each family with its default parameters (``synonym`` gets the shared English
counter-fitted lexicon, ``code_switch`` the small test dictionaries in tests/data/muse),
applies it with ``apply_batch`` to both sentences of all 14,000 pairs and prints the time
per family (target: under 30 s for all families together). It then measures realised
rates (changed fraction, character and word edit rate, see
``robust_transfer.data.perturbations.stats``) per language on the first ``--stats-rows``
pairs; that part is not included in the timings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from robust_transfer.data.perturbations import build_perturbation, families, perturbation_stats  # noqa: E402
from robust_transfer.keys import LANGUAGES as LANGS  # noqa: E402

FIELDS = ("sentence1", "sentence2")


def read_pawsx_tsv(path: Path) -> dict[str, list]:
    """XTREME PAWS-X layout: no header, sentence1 TAB sentence2 TAB label, CRLF."""
    cols: dict[str, list] = {"id": [], "sentence1": [], "sentence2": [], "label": []}
    with open(path, encoding="utf-8", newline="") as fh:
        for i, line in enumerate(fh):
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) != 3:
                continue
            cols["id"].append(str(i))
            cols["sentence1"].append(parts[0])
            cols["sentence2"].append(parts[1])
            cols["label"].append(int(parts[2]))
    return cols


def family_params(data: Path) -> dict[str, dict]:
    muse = ROOT / "tests" / "data" / "muse"
    return {
        "synonym": {"lexicons": {"en": str(data / "lexicons" / "counterfitted_neighbors_en.json")}},
        "code_switch": {"dictionaries": {p.stem: str(p) for p in sorted(muse.glob("*.txt"))}},
    }


def cached_build(data: dict[str, dict], extra: dict[str, dict]) -> dict[str, float]:
    """The project's path (`perturbed.perturb_split`: datasets.map cached by fingerprint), built
    twice into a fresh cache: the first build perturbs, the second only reads the cache."""
    import tempfile

    from datasets import Dataset, disable_progress_bars

    from robust_transfer.data.perturbed import perturb_split

    disable_progress_bars()
    datasets = {lang: Dataset.from_dict(cols) for lang, cols in data.items()}
    perturbations = [build_perturbation(name, extra.get(name, {})) for name in families()]
    seconds = []
    with tempfile.TemporaryDirectory() as cache:
        for _ in range(2):
            t = time.perf_counter()
            for pert in perturbations:
                for lang, ds in datasets.items():
                    if pert.supports(lang):
                        perturb_split(ds, pert, lang, Path(cache))
            seconds.append(time.perf_counter() - t)
    print(f"\nall families, 7 languages, cached datasets path: first build {seconds[0]:.2f}s, "
          f"cached second build {seconds[1]:.2f}s")
    return {"first_s": seconds[0], "cached_s": seconds[1]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--json", type=Path, help="write timings and realised rates to this file")
    ap.add_argument(
        "--data", type=Path, default=ROOT.parent / "shared" / "data", help="shared data folder"
    )
    ap.add_argument(
        "--stats-rows",
        type=int,
        default=300,
        help="pairs per language for realised rates (0: skip)",
    )
    args = ap.parse_args(argv)

    pawsx = args.data / "pawsx"
    if not pawsx.is_dir():
        print(f"PAWS-X dev files not found under {pawsx}; nothing to benchmark", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    data = {lang: read_pawsx_tsv(pawsx / f"dev-{lang}.tsv") for lang in LANGS}
    print(
        f"loaded {sum(len(d['id']) for d in data.values())} pairs in {time.perf_counter() - t0:.2f}s"
    )

    extra = family_params(args.data)
    results: dict[str, dict] = {}
    total = 0.0
    print(f"{'family':<12} {'build s':>8} {'apply s':>8}  languages")
    for name in families():
        t = time.perf_counter()
        pert = build_perturbation(name, extra.get(name, {}))
        langs = [lang for lang in LANGS if pert.supports(lang)]
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        outputs = {lang: pert.apply_batch(data[lang], lang) for lang in langs}
        apply_s = time.perf_counter() - t
        total += build_s + apply_s
        n = len(langs) * len(data["en"]["id"])
        print(
            f"{name:<12} {build_s:8.2f} {apply_s:8.2f}  {' '.join(langs)}  ({n / max(apply_s, 1e-9):,.0f} pairs/s)"
        )
        rates = {}
        if args.stats_rows:
            k = args.stats_rows
            for lang in langs:
                orig = {f: data[lang][f][:k] for f in FIELDS}
                new = {f: outputs[lang][f][:k] for f in FIELDS}
                rates[lang] = {
                    key: round(v, 4)
                    for key, v in perturbation_stats(orig, new, FIELDS, lang=lang).items()
                    if key != "n_texts"
                }
        results[name] = {
            "build_s": build_s,
            "apply_s": apply_s,
            "langs": langs,
            "rate": pert.params.rate,
            "realised": rates,
        }
    print(f"{'total':<12} {total:17.2f}")
    results["cached_build"] = cached_build(data, extra)

    if args.stats_rows:
        print(
            f"\nrealised rates on the first {args.stats_rows} pairs (changed / char edit / word edit):"
        )
        print(f"{'family':<12} {'rate':>5}  " + "  ".join(f"{lang:^17}" for lang in LANGS))
        for name, r in results.items():
            cells = []
            for lang in LANGS:
                s = r["realised"].get(lang)
                cells.append(
                    f"{s['changed_fraction']:.2f}/{s['char_edit_rate']:.3f}/{s['word_edit_rate']:.3f}"
                    if s
                    else f"{'-':^17}"
                )
            print(f"{name:<12} {r['rate']:5.2f}  " + "  ".join(f"{c:^17}" for c in cells))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"total_s": total, "families": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
