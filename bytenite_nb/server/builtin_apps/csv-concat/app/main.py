# === BYTENITE ASSEMBLER - MAIN SCRIPT ===
"""csv-concat: join every task's CSV result into one CSV.

Reads every top-level *.csv file in TASK_RESULTS_DIR in natural name order (numbers compared
as numbers, so chunk_2 comes before chunk_10) and writes OUTPUT_DIR/<output> with the header
once. Files whose columns differ are aligned on the union of all columns (in first-seen
order), missing cells left empty.
"""

import csv
import json
import os
import re
import sys

results_dir = os.environ["TASK_RESULTS_DIR"]
output_dir = os.environ["OUTPUT_DIR"]
params = json.loads(os.environ.get("ASSEMBLER_PARAMS") or "{}")
output_name = params.get("output") or "result.csv"
chunk_column = params.get("chunk_column")
csv.field_size_limit(sys.maxsize)


def natural_key(name):
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", name)]


# 1. Reading Result Files
def read_result_files():
    names = [n for n in os.listdir(results_dir)
             if n.lower().endswith(".csv") and os.path.isfile(os.path.join(results_dir, n))]
    return [os.path.join(results_dir, n) for n in sorted(names, key=natural_key)]


def header_of(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        return next(csv.reader(f), None) or []


# 2. Fanning In Results
if __name__ == "__main__":
    paths = read_result_files()
    columns = []
    for path in paths:
        for c in header_of(path):
            if c not in columns:
                columns.append(c)
    if chunk_column and chunk_column not in columns:
        columns.insert(0, chunk_column)
    rows = 0
    with open(os.path.join(output_dir, output_name), "w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns, restval="", extrasaction="ignore")
        writer.writeheader()
        for index, path in enumerate(paths):
            with open(path, encoding="utf-8-sig", newline="") as f:
                for record in csv.DictReader(f):
                    if chunk_column:
                        record[chunk_column] = str(index)
                    writer.writerow(record)
                    rows += 1
    print(f"{rows} rows from {len(paths)} file(s) -> {output_name}")
