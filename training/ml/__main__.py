"""python -m training.ml prepare|align|train|mimic|evaluate|export|table|finding [--config FILE ...] [--set k=v ...].

``evaluate --run A [--run B ...] --manifest FILE`` scores trained runs on any corpus (a release's JSONL, its
``--split``, or a corpus TSV with a lexicon) with what each run learnt, and compares each with the first by a
paired speaker-level bootstrap.

``finding --seeds 3 --rows teacher,snn,mimic_l2,mimic_soft,mimic_soft_sp --sizes 512,2000`` trains (or reuses) every
row x size x seed, then prints each row's mean and spread and the paired bootstrap of the row means."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.ml import finding, pipeline
from training.ml.config import Config, ConfigMismatch, InvalidConfig, load_config
from training.ml.data import MissingSplit, store_dir


def _run_dir(work_dir: str, run: str) -> Path:
    path = Path(run)
    return path if path.is_absolute() or path.exists() else Path(work_dir) / "runs" / run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.ml", description=__doc__)
    parser.add_argument(
        "stage", choices=["prepare", "align", "train", "mimic", "evaluate", "export", "table", "finding"]
    )
    parser.add_argument("--config", action="append", default=[], help="JSON override file (repeatable)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. model.width=512")
    parser.add_argument("--run", action="append", default=[], help="run name under work_dir/runs, or a path")
    parser.add_argument("--teacher", help="mimic: the teacher's run")
    parser.add_argument("--objective", default="mimic_l2", choices=["mimic_l2", "mimic_soft"])
    parser.add_argument("--stop-after", type=int, help="stop after this many epochs (a later call resumes)")
    parser.add_argument("--out", help="export: the .onnx path")
    parser.add_argument("--split", default="test", help="table, and evaluate --manifest of a release: the split")
    parser.add_argument("--manifest", help="evaluate: score the runs on this corpus (release .jsonl or corpus .tsv)")
    parser.add_argument("--lexicon", help="evaluate --manifest of a .tsv: pronunciations (default: its lexicon.txt)")
    parser.add_argument("--bootstrap", type=int, default=2000, help="evaluate --manifest: bootstrap resamples")
    parser.add_argument("--json", help="evaluate --manifest, finding: also write the scores to this JSON file")
    parser.add_argument("--seeds", type=int, default=3, help="finding: seeds per row")
    parser.add_argument(
        "--rows", default="teacher,snn,mimic_l2,mimic_soft", help=f"finding: of {','.join(finding.ROWS)}"
    )
    parser.add_argument("--sizes", default="", help="finding: DNN teacher widths, e.g. 512,2000 (default: model.width)")
    parser.add_argument("--blstm-config", default=finding.default_extra_file("blstm"), help="finding: the blstm row's")
    parser.add_argument("--ctc-config", default=finding.default_extra_file("ctc"), help="finding: the ctc row's")
    parser.add_argument("--eval-workers", type=int, default=0, help="finding: evaluate in N processes meanwhile")
    parser.add_argument("--report-only", action="store_true", help="finding: summarise the finished runs, train none")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.set)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        parser.error(f"the configuration cannot be used: {exc}")
    runs = [_run_dir(config.work_dir, r) for r in args.run]
    try:
        return _stage(args, parser, config, runs)
    except FileNotFoundError as exc:
        print(f"python -m training.ml {args.stage}: {exc.filename or exc} does not exist", file=sys.stderr)
        return 1
    except (ConfigMismatch, InvalidConfig, MissingSplit, finding.FindingError) as exc:
        print(f"python -m training.ml {args.stage}: {exc}", file=sys.stderr)
        return 1


def _stage(args: argparse.Namespace, parser: argparse.ArgumentParser, config: Config, runs: list[Path]) -> int:
    if args.stage == "prepare":
        store = pipeline.prepare(config)
        counts: dict[str, int] = {}
        for u in store.utterances:
            counts[u.split] = counts.get(u.split, 0) + 1
        print(
            json.dumps(
                {
                    "utterances": len(store.utterances),
                    "frames": len(store.frames),
                    "splits": counts,
                    "store": str(store_dir(config)),
                }
            )
        )
    elif args.stage == "align":
        _, history = pipeline.align(config)
        print(json.dumps(history, indent=2))
        print(f"alignment: {pipeline.alignment_dir(config)}", file=sys.stderr)
    elif args.stage in ("train", "mimic"):
        if len(runs) != 1:
            parser.error("train and mimic take one --run")
        if args.stage == "mimic":
            if not args.teacher:
                parser.error("mimic needs --teacher")
            config.train.objective = args.objective
            config.train.teacher = str(_run_dir(config.work_dir, args.teacher))
        pipeline.train(config, runs[0], stop_after=args.stop_after)
    elif args.stage == "evaluate" and args.manifest:
        if not runs:
            parser.error("evaluate --manifest takes at least one --run")
        split = args.split if args.manifest.endswith(".jsonl") else ""
        scores = pipeline.score_manifest(
            runs, args.manifest, split=split, lexicon=args.lexicon, resamples=args.bootstrap
        )
        if args.json:
            Path(args.json).write_text(json.dumps(scores, indent=2) + "\n")
        print(pipeline.manifest_table(scores))
    elif args.stage == "evaluate":
        # --set decode.KEY=VALUE replaces that setting of each run's decoding grid (one grid for every model).
        decode = {
            k.removeprefix("decode."): v for k, _, v in (i.partition("=") for i in args.set) if k.startswith("decode.")
        }
        for run in runs:
            metrics = pipeline.evaluate(run, decode=decode)
            brief = {k: metrics[k] for k in ("run", "parameters", "dev", "test") if k in metrics}
            for split in ("dev", "test"):  # the per-utterance errors are for the bootstrap, not the terminal
                if isinstance(brief.get(split), dict):
                    brief[split] = {k: v for k, v in brief[split].items() if k != "utterances"}
            print(json.dumps(brief))
        print(pipeline.results_table(runs, args.split))
    elif args.stage == "export":
        for run in runs:
            print(pipeline.export(run, args.out))
    elif args.stage == "table":
        print(pipeline.results_table(runs, args.split))
    elif args.stage == "finding":
        return _finding(args, parser, config)
    return 0


def _finding(args: argparse.Namespace, parser: argparse.ArgumentParser, config: Config) -> int:
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()] or [config.model.width]
        extra = finding.extra_configs(args.config, args.set, args.blstm_config, args.ctc_config)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        parser.error(f"the finding cannot be set up: {exc}")
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    cells = finding.plan(config, rows, sizes, args.seeds, extra)
    if args.report_only:
        done = finding.evaluated(cells)
        print(f"{len(done)} of {len(cells)} runs finished and evaluated", file=sys.stderr)
        if not done:
            raise finding.FindingError("None of the finding's runs has finished yet.")
        cells = done
    else:
        finding.run(cells, log=lambda line: print(line, file=sys.stderr, flush=True), eval_workers=args.eval_workers)
    summary = finding.summarise(cells, args.split, args.bootstrap)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    print(finding.table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
