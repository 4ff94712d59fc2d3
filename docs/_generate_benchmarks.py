"""Generate the benchmark tables from ``benchmarks/results/*.json``.

No figure on the Benchmarks page or in the README is typed by hand: this script
reads every result file and writes

- ``docs/benchmarks_tables.rst`` (included by ``docs/benchmarks.rst``): for each
  benchmark's main result file (``<benchmark>.json``) its command, machine and
  date and every table of rows it holds; the one-off sweeps and record runs
  (any other file) summarised in one table of file, command, machine and date;
- the README's headline table, between ``<!-- benchmarks:begin -->`` and
  ``<!-- benchmarks:end -->``.

Run by ``docs/conf.py`` at every build; ``python docs/_generate_benchmarks.py
--check`` exits 1 when the README's table is not what the results give (CI).
"""

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README_BEGIN = "<!-- benchmarks:begin -->"
README_END = "<!-- benchmarks:end -->"
#: Longest table printed whole (bench_defaults' digits: 77 rows); longer ones name
#: the file that holds the rest.
MAX_ROWS = 80


def fmt(value):
    """One cell: floats to 4 significant digits, lists joined, None blank."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value)
    return str(value).replace("|", "/")


def _is_scalar(value):
    return value is None or isinstance(value, str | int | float | bool)


def _mean_of_numbers(value):
    """The mean of a dict of numbers (e.g. one AUC per digit), else None."""
    if isinstance(value, dict) and value:
        numbers = list(value.values())
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
            return sum(numbers) / len(numbers)
    return None


def _row(record):
    row = {}
    for key, value in record.items():
        if _is_scalar(value) or (isinstance(value, list) and all(map(_is_scalar, value))):
            row[key] = value
        elif (mean := _mean_of_numbers(value)) is not None:
            row[f"{key} (mean of {len(value)})"] = mean
    return row


def _holds_rows(section):
    """Whether a dict holds a list of records (a table) among its values."""
    return any(
        isinstance(value, list) and value and all(isinstance(r, dict) for r in value)
        for value in section.values()
    )


def tables(obj, path=()):
    """Yield ``(path, rows, context)`` for every table of records in ``obj``.

    A table is a list of dicts, or a dict of at least two dicts (each key then
    names a row). ``context`` is the innermost dict around it, whose
    ``command`` and ``date`` (if any) say how that part was measured.
    """
    if isinstance(obj, list) and len(obj) and all(isinstance(r, dict) for r in obj):
        yield path, [_row(r) for r in obj], None
        return
    if not isinstance(obj, dict):
        return
    values = list(obj.values())
    # a dict of sections (bench_defaults' data sets), each holding its own
    # table of rows, is no table itself: its sections' tables are the figures
    if len(values) >= 2 and all(isinstance(v, dict) and not _holds_rows(v) for v in values):
        rows = [{"name": key, **_row(value)} for key, value in obj.items()]
        if all(len(row) > 2 for row in rows):
            yield path, rows, obj
            return
    for key, value in obj.items():
        if key in ("hardware", "args"):
            continue
        for sub_path, rows, context in tables(value, (*path, key)):
            yield sub_path, rows, context if context is not None else obj


def machine(hardware):
    """One line naming the machine and its load, as the JSON records them."""
    parts = [
        hardware.get("cpu_model", "unknown CPU"),
        f"{hardware['cpu_count']} cores" if "cpu_count" in hardware else None,
        f"torch {hardware['torch']}" if "torch" in hardware else None,
        f"{hardware['torch_num_threads']} torch thread(s)"
        if "torch_num_threads" in hardware
        else None,
        f"Python {hardware['python']}" if "python" in hardware else None,
        f"skae {hardware['skae']}" if "skae" in hardware else None,
    ]
    load = hardware.get("loadavg_1_5_15")
    if load:
        parts.append(f"load average {fmt(float(load[0]))} at the start")
    return ", ".join(p for p in parts if p)


def list_table(title, rows):
    """An RST list-table of ``rows`` (dicts), columns in order of appearance."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    shown = rows[:MAX_ROWS]
    lines = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for cells in [columns] + [[fmt(row.get(c)) for c in columns] for row in shown]:
        lines.append(f"   * - {cells[0] if cells[0] != '' else ' '}")
        lines.extend(f"     - {c if c != '' else ' '}" for c in cells[1:])
    lines.append("")
    if len(rows) > len(shown):
        lines += [f"The first {len(shown)} of {len(rows)} rows.", ""]
    return lines


def provenance(data, context):
    """Command, machine and date lines of one table."""
    hardware = data.get("hardware", {}) if isinstance(data.get("hardware"), dict) else {}
    context = context or {}
    command = context.get("command") or hardware.get("command")
    date = context.get("date") or hardware.get("date")
    lines = []
    if command:
        lines.append(f"| Command: ``{command}``")
    if hardware:
        lines.append(f"| Machine: {machine(hardware)}")
    if date:
        lines.append(f"| Date: {date}")
    if hardware.get("git_commit"):
        lines.append(f"| Commit: {hardware['git_commit'][:7]}")
    return lines + [""] if lines else []


def heading(text, char):
    return [text, char * len(text), ""]


def benchmark_section(path, data):
    """The RST of one main result file: each of its tables with its provenance."""
    lines = heading(f"{data.get('benchmark', path.stem)}", "-")
    lines += [f"From ``benchmarks/results/{path.name}``.", ""]
    if isinstance(data.get("notes"), str) and data["notes"]:
        lines += [data["notes"], ""]
    found = list(tables(data))
    if not found:
        lines += provenance(data, None)
    for table_path, rows, context in found:
        title = " / ".join(str(p) for p in table_path) or path.stem
        lines += provenance(data, context)
        lines += list_table(title, rows)
    return lines


def summary_table(files):
    """One row per sweep or record run: file, command, machine, date."""
    rows = []
    for path, data in files:
        hardware = data.get("hardware", {}) if isinstance(data, dict) else {}
        hardware = hardware if isinstance(hardware, dict) else {}
        rows.append(
            {
                "file": path.name,
                "command": hardware.get("command", ""),
                "machine": machine(hardware) if hardware else "",
                "date": hardware.get("date", ""),
            }
        )
    return list_table("Sweeps and record runs kept in benchmarks/results", rows)


def load_results(folder=RESULTS):
    files = []
    for path in sorted(folder.glob("*.json")):
        with open(path) as f:
            files.append((path, json.load(f)))
    return files


def benchmarks_rst(files):
    """The whole generated page body."""
    main, other = [], []
    for path, data in files:
        is_main = isinstance(data, dict) and data.get("benchmark") == path.stem
        (main if is_main else other).append((path, data))
    lines = [".. This file is generated by docs/_generate_benchmarks.py: do not edit.", ""]
    for path, data in main:
        lines += benchmark_section(path, data)
    lines += heading("Sweeps and record runs", "-")
    lines += [
        "Each file below is a one-off sweep or record run; its tables are in the",
        "Markdown file of the same name beside it.",
        "",
    ]
    return "\n".join(lines + summary_table(other))


def headline_rows(data, dataset="digits", models=("PCA", "Autoencoder", "DenoisingAutoencoder")):
    """Mean accuracy and held-out error per (k, model) of ``bench_defaults``."""
    section = data["results"][dataset]
    cells = defaultdict(list)
    for row in section["rows"]:
        if row.get("model") in models and "accuracy" in row and "recon_error" in row:
            cells[(row["n_components"], row["model"])].append(row)
    rows = []
    for k in sorted({k for k, _ in cells}):
        row = {"k": k}
        for model in models:
            found = cells.get((k, model), [])
            if found:
                acc = sum(r["accuracy"] for r in found) / len(found)
                err = sum(r["recon_error"] for r in found) / len(found)
                row[model] = f"{acc:.3f} / {err:.2f}"
        rows.append(row)
    return section, rows


def readme_table(files):
    """The README's headline table (Markdown), with its machine and command."""
    data = dict((p.stem, d) for p, d in files)["bench_defaults"]
    section, rows = headline_rows(data)
    seeds = len({r.get("random_state") for r in section["rows"] if "random_state" in r}) or 1
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = [
        "| " + " | ".join(c if c == "k" else f"{c} acc / error" for c in columns) + " |",
        "|" + "|".join("---:" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    hardware = {**data.get("hardware", {})}
    if "loadavg_1_5_15" in section:  # a merged file: the section's own run
        hardware["loadavg_1_5_15"] = section["loadavg_1_5_15"]
    command = section.get("command", hardware.get("command", ""))
    date = section.get("date", hardware.get("date", ""))
    return "\n".join(
        [
            f"Held-out digits ({section.get('n_train')} training, {section.get('n_valid')} "
            "held-out rows), every model with its defaults and only `n_components` set: "
            "accuracy of a logistic regression fitted on the training rows' codes, on the "
            "held-out rows' codes / squared error per image"
            + (f", means over {seeds} seeds" if seeds > 1 else "")
            + ". Every network starts at PCA: where training does not beat it on held-out "
            "rows, the fit is PCA.",
            "",
            *lines,
            "",
            f"Machine: {machine(hardware)}; `{command}`, {date[:10]}. "
            "Figures are of that machine: expect other CPUs to differ in the last digits.",
        ]
    )


def update_readme(text, table):
    begin, end = text.index(README_BEGIN), text.index(README_END)
    return text[: begin + len(README_BEGIN)] + "\n" + table + "\n" + text[end:]


def write_page(files):
    """Write ``docs/benchmarks_tables.rst`` (what ``docs/conf.py`` runs)."""
    (ROOT / "docs" / "benchmarks_tables.rst").write_text(benchmarks_rst(files) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if README.md is stale")
    args = parser.parse_args(argv)
    files = load_results()
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = update_readme(text, readme_table(files))
    if args.check:
        if new != text:
            print("README.md's benchmark table is stale: run docs/_generate_benchmarks.py")
            return 1
        print("README.md's benchmark table is current")
        return 0
    write_page(files)
    if new != text:
        readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
