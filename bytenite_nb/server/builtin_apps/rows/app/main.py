# === BYTENITE PARTITIONER - MAIN SCRIPT ===
"""rows: fan a CSV/TSV or JSON Lines source out by rows.

Every file in SOURCE_DIR (in name order) is read as one table; every `rows_per_chunk` data
rows become one chunk `data_{i}.bin` in CHUNKS_DIR. CSV chunks repeat the header row, so each
task sees a complete little CSV; JSON Lines chunks are the lines themselves. An empty table
still gives one chunk (the header alone), so the job runs and produces an empty result, and
a WARNING line says there were no rows (the job's summary shows it).
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
    """Rolls records into `data_{i}.bin` chunks of `rows_per_chunk` records each.

    `open_chunk()` opens the next chunk file and returns `(file, write)`, so CSV and JSON Lines
    share the rolling logic and differ only in how a chunk starts and a record is written.
    """

    def __init__(self, open_chunk):
        self.open_chunk = open_chunk
        self.index = 0  # chunks finished
        self.count = 0  # records written
        self._file = None
        self._write = None
        self._rows = 0

    def full(self):
        return max_chunks is not None and self.index >= int(max_chunks)

    def path(self):
        return os.path.join(chunks_dir, f"data_{self.index}.bin")

    def add(self, record):
        """Write one record; False once `max_chunks` chunks are full (the caller stops)."""
        if self._file is None:
            if self.full():
                return False
            self._file, self._write = self.open_chunk()
            self._rows = 0
        self._write(record)
        self._rows += 1
        self.count += 1
        if self._rows >= rows_per_chunk:
            self._close_chunk()
        return True

    def _close_chunk(self):
        if self._file is not None:
            self._file.close()
            self._file = None
            self.index += 1

    def finish(self):
        self._close_chunk()
        if self.index == 0:  # no records at all: one chunk as a record-less table
            f, _ = self.open_chunk()
            f.close()
            self.index = 1


def split_csv(paths, delimiter):
    header = None

    def open_chunk():
        # Kept open across many rows and closed when the chunk is full.
        f = open(writer.path(), "w", encoding="utf-8", newline="")  # noqa: SIM115
        w = csv.writer(f, delimiter=delimiter)
        if header is not None:
            w.writerow(header)
        return f, w.writerow

    writer = ChunkWriter(open_chunk)
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
                if row and not writer.add(row):
                    break
    writer.finish()  # no data rows at all: one chunk with the header alone
    return writer


def split_jsonl(paths):
    def open_chunk():
        f = open(writer.path(), "w", encoding="utf-8")  # noqa: SIM115
        return f, f.write

    writer = ChunkWriter(open_chunk)
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
                if not writer.add(line if line.endswith("\n") else line + "\n"):
                    break
    writer.finish()
    return writer


if __name__ == "__main__":
    paths = read_source_files()
    if not paths:
        raise SystemExit("SOURCE_DIR is empty: the job needs a CSV or JSON Lines data source")
    kind = detect(paths[0])
    if kind == "jsonl":
        writer = split_jsonl(paths)
    else:
        delimiter = params.get("delimiter") or ("\t" if kind == "tsv" else ",")
        writer = split_csv(paths, delimiter)
    print(f"{writer.count} rows from {len(paths)} file(s) -> {writer.index} chunk(s) "
          f"of up to {rows_per_chunk} rows ({kind})")
    if writer.count == 0:
        names = ", ".join(os.path.basename(p) for p in paths)
        print(f"WARNING: no data rows in {names}: the result will have no rows "
              "(was this the input you meant?)")
