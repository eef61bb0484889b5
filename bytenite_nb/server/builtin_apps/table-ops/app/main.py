# === BYTENITE APP - MAIN SCRIPT ===
"""table-ops: apply table operations to one chunk (CSV with a header, or JSON Lines).

APP_PARAMS is one operation or {"steps": [op, ...]}, applied in order:

  {"op": "select", "columns": ["a", "b"]}          keep these columns, in this order
  {"op": "filter", "where": "price > 10 and city == 'Rome'"}
  {"op": "eval", "columns": {"total": "price * qty"}}   add or replace computed columns
  {"op": "head", "n": 5}                           the first n rows of the chunk
  {"op": "describe"}                               per-column statistics of the chunk

Expressions are Python over the row: columns by name (numeric text already converted to int
or float, empty cells None), `row["any name"]` for names that are not identifiers, and
abs/min/max/round/len/int/float/str/bool/sum/any/all and `math`. They run the job owner's
own code on their own machine, exactly as the app itself does; this is not a sandbox.

The result is TASK_RESULTS_DIR/chunk_<CHUNK_NUMBER, 6 digits>.csv, so that results sort in
chunk order; the csv-concat assembler joins them into one CSV. Only the standard library is
imported, so every task starts fast.
"""

import builtins
import csv
import json
import math
import os
import sys

task_dir = os.environ["TASK_DIR"]
results_dir = os.environ["TASK_RESULTS_DIR"]
chunk_number = int(os.environ.get("CHUNK_NUMBER") or 0)
params = json.loads(os.environ.get("APP_PARAMS") or "{}")
csv.field_size_limit(sys.maxsize)

SAFE_BUILTINS = {
    name: getattr(builtins, name)
    for name in ("abs", "min", "max", "round", "len", "int", "float", "str", "bool", "sum",
                 "any", "all", "sorted", "isinstance")
}


# 1. Reading Inputs
def read_chunk(path):
    """(columns, rows): rows are dicts of raw values (str for CSV, JSON values for JSONL)."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        head = f.read(4096)
        f.seek(0)
        if head.lstrip().startswith("{"):
            columns, rows = [], []
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise SystemExit(f"chunk line {number} is not JSON: {exc}") from None
                if not isinstance(record, dict):
                    raise SystemExit(f"chunk line {number} is not a JSON object")
                for key in record:
                    if key not in columns:
                        columns.append(key)
                rows.append(record)
            return columns, rows
        reader = csv.reader(f, delimiter=params.get("delimiter") or ",")
        columns = next(reader, None) or []
        rows = [dict(zip(columns, row, strict=False)) for row in reader if row]
        return columns, rows


# 2. Handling Parameters
def convert(value):
    """Numeric text → int/float, empty → None; other values unchanged."""
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return None
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return value
        return number if math.isfinite(number) or text.lower() in ("inf", "-inf", "nan") else value
    return value


def compile_expr(text, where):
    try:
        return compile(text, f"<{where}>", "eval")
    except SyntaxError as exc:
        raise SystemExit(f"{where}: invalid expression {text!r}: {exc.msg}") from None


def evaluate(code, row, text):
    values = {k: convert(v) for k, v in row.items()}
    scope = {k: v for k, v in values.items() if isinstance(k, str) and k.isidentifier()}
    scope.update(row=values, math=math, __builtins__=SAFE_BUILTINS)
    try:
        return eval(code, scope)
    except Exception as exc:
        raise SystemExit(f"expression {text!r} failed on row {values}: "
                         f"{type(exc).__name__}: {exc}") from None


# 3. Developing the Core Functionality
def op_select(columns, rows, step):
    wanted = list(step["columns"])
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise SystemExit(f"select: no column(s) {missing}; the columns are {columns}")
    return wanted, [{c: r.get(c) for c in wanted} for r in rows]


def op_filter(columns, rows, step):
    code = compile_expr(step["where"], "filter")
    return columns, [r for r in rows if evaluate(code, r, step["where"])]


def op_eval(columns, rows, step):
    exprs = [(name, compile_expr(text, f"eval {name}"), text)
             for name, text in dict(step["columns"]).items()]
    out_columns = list(columns) + [name for name, _, _ in exprs if name not in columns]
    for r in rows:
        for name, code, text in exprs:
            r[name] = evaluate(code, r, text)
    return out_columns, rows


def op_head(columns, rows, step):
    return columns, rows[: int(step["n"])]


def op_describe(columns, rows, step):
    stats_columns = ["chunk", "column", "count", "missing", "numeric", "sum", "min", "max",
                     "mean", "distinct"]
    out = []
    for c in columns:
        values = [convert(r.get(c)) for r in rows]
        present = [v for v in values if v is not None]
        numbers = [v for v in present if isinstance(v, (int, float)) and not isinstance(v, bool)]
        distinct = {json.dumps(v, sort_keys=True, default=str) for v in present}
        out.append({
            "chunk": chunk_number,
            "column": c,
            "count": len(present),
            "missing": len(values) - len(present),
            "numeric": len(numbers),
            "sum": sum(numbers) if numbers else None,
            "min": min(numbers) if numbers else None,
            "max": max(numbers) if numbers else None,
            "mean": sum(numbers) / len(numbers) if numbers else None,
            "distinct": len(distinct),
        })
    return stats_columns, out


OPS = {"select": op_select, "filter": op_filter, "eval": op_eval, "head": op_head,
       "describe": op_describe}


def steps_from(params):
    if "steps" in params:
        return list(params["steps"])
    if "op" in params:
        return [params]
    return []


# 4. Saving Outputs
def cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


if __name__ == "__main__":
    columns, rows = read_chunk(os.path.join(task_dir, "data.bin"))
    n_in = len(rows)
    for i, step in enumerate(steps_from(params)):
        op = step.get("op")
        if op not in OPS:
            raise SystemExit(f"step {i}: unknown op {op!r}; use one of {sorted(OPS)}")
        columns, rows = OPS[op](columns, rows, step)
    name = f"chunk_{chunk_number:06d}.csv"
    with open(os.path.join(results_dir, name), "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for r in rows:
            writer.writerow([cell(r.get(c)) for c in columns])
    print(f"chunk {chunk_number}: {n_in} rows in, {len(rows)} rows out -> {name}")
