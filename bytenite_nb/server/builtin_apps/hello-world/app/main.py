# === BYTENITE APP - MAIN SCRIPT ===
"""Hello World: change the case of a text file (ByteNite's Hello World tutorial app)."""

import json
import os

task_dir = os.getenv("TASK_DIR")
task_results_dir = os.getenv("TASK_RESULTS_DIR")
app_params_raw = os.getenv("APP_PARAMS")
if not app_params_raw:
    raise ValueError("APP_PARAMS environment variable is not set")
app_params = json.loads(app_params_raw)


# 1. Reading Inputs
def read_input() -> str:
    with open(os.path.join(task_dir, "data.bin"), encoding="utf-8") as f:
        return f.read()


# 2. Handling Parameters
def convert(text: str, case: str) -> str:
    if case == "upper":
        return text.upper()
    if case == "lower":
        return text.lower()
    if case == "title":
        return text.title()
    return text


# 3. Developing the Core Functionality / 4. Saving Outputs
if __name__ == "__main__":
    text = read_input()
    result = convert(text, app_params.get("case", ""))
    output_path = os.path.join(task_results_dir, "hello_world_processed.txt")
    with open(output_path, "w", encoding="utf-8") as f:
        f.write(result)
    print(f"Wrote {len(result)} characters to hello_world_processed.txt")
