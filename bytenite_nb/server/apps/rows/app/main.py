# === BYTENITE PARTITIONER - MAIN SCRIPT ===
"""rows: fan a CSV/TSV or JSON Lines source out by rows.

Every file in SOURCE_DIR (in name order) is read as one table; every `rows_per_chunk` data
rows become one chunk `data_{i}.bin` in CHUNKS_DIR. CSV chunks repeat the header row, so each
task sees a complete little CSV; JSON Lines chunks are the lines themselves. An empty table
still gives one chunk (the header alone), so the job runs and produces an empty result.
"""

import csv
import json
import os
import sys

source_dir = os.environ["SOURCE_DIR"]
chunks_dir = os.environ["CHUNKS_DIR"]
params = json.loads(os.environ.get("PARTITIONER_PARAMS") or "{}")

rows_per_chunk = int(params.get("rows_per_chunk", 1000))
fmt = params.get("format", "auto")
max_chunks = params.get("max_chunks")
if rows_per_chunk < 1:
    raise ValueError("rows_per_chunk must be at least 1")
csv.field_size_limit(sys.maxsize)


# 1. Reading Data Source
def read_source_files():
    return sorted(
        os.path.join(source_dir, name)
        for name in os.listdir(source_dir)
        if os.path.isfile(os.path.join(source_dir, name))
    )


def detect(path):
    if fmt != "auto":
        return fmt
    lower = path.lower()
    if lower.endswith((".jsonl", ".ndjson", ".jsonl.txt")):
        return "jsonl"
    if lower.endswith(".tsv"):
        return "tsv"
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        head = f.read(4096).lstrip()
    return "jsonl" if head.startswith("{") else "csv"


# 3. Fanning Out Data
class ChunkWriter:
    def __init__(self):
        self.index = 0
        self.count = 0

    def full(self):
        return max_chunks is not None and self.index >= int(max_chunks)

    def path(self):
        return os.path.join(chunks_dir, f"data_{self.index}.bin")


def split_csv(paths, delimiter, writer):
    header = None
    out = None
    rows_in_chunk = 0

    def open_chunk():
        # Kept open across many rows and closed when the chunk is full.
        f = open(writer.path(), "w", encoding="utf-8", newline="")  # noqa: SIM115
        w = csv.writer(f, delimiter=delimiter)
        if header is not None:
            w.writerow(header)
        return f, w

    current = None
    for path in paths:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter=delimiter)
            file_header = next(reader, None)
            if file_header is None:
                continue
            if header is None:
                header = file_header
            elif file_header != header:
                print(f"WARNING: {os.path.basename(path)} has a different header; "
                      "its rows are written under the first file's header")
            for row in reader:
                if not row:
                    continue
                if current is None:
                    if writer.full():
                        break
                    current, out = open_chunk()
                    rows_in_chunk = 0
                out.writerow(row)
                rows_in_chunk += 1
                writer.count += 1
                if rows_in_chunk >= rows_per_chunk:
                    current.close()
                    current = None
                    writer.index += 1
    if current is not None:
        current.close()
        writer.index += 1
    if writer.index == 0:  # no data rows at all: one chunk with the header alone
        f, _ = open_chunk()
        f.close()
        writer.index = 1


def split_jsonl(paths, writer):
    current = None
    rows_in_chunk = 0
    for path in paths:
        with open(path, encoding="utf-8-sig") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    json.loads(line)
                except ValueError as exc:
                    raise SystemExit(
                        f"{os.path.basename(path)} line {number} is not JSON: {exc}"
                    ) from None
                if current is None:
                    if writer.full():
                        break
                    current = open(writer.path(), "w", encoding="utf-8")  # noqa: SIM115
                    rows_in_chunk = 0
                current.write(line if line.endswith("\n") else line + "\n")
                rows_in_chunk += 1
                writer.count += 1
                if rows_in_chunk >= rows_per_chunk:
                    current.close()
                    current = None
                    writer.index += 1
    if current is not None:
        current.close()
        writer.index += 1
    if writer.index == 0:
        open(writer.path(), "w").close()
        writer.index = 1


if __name__ == "__main__":
    paths = read_source_files()
    if not paths:
        raise SystemExit("SOURCE_DIR is empty: the job needs a CSV or JSON Lines data source")
    kind = detect(paths[0])
    writer = ChunkWriter()
    if kind == "jsonl":
        split_jsonl(paths, writer)
    else:
        delimiter = params.get("delimiter") or ("\t" if kind == "tsv" else ",")
        split_csv(paths, delimiter, writer)
    print(f"{writer.count} rows from {len(paths)} file(s) -> {writer.index} chunk(s) "
          f"of up to {rows_per_chunk} rows ({kind})")
