"""A test agent whose behaviour each step's instructions describe as JSON.

Keys: lines (printed one by one), numbered_lines (how many "line N" to print),
sleep (seconds), exit (code), stderr (text), state (updates), output (result),
raw_result (text written to the result file as it is), child_pid_file (start a
grandchild `sleep` and write its pid there).
With plain-text instructions it succeeds at once.
"""

import json
import os
import subprocess
import sys
import time


def main() -> int:
    prompt = sys.stdin.read()
    with open(os.environ["PX_CONTEXT_FILE"]) as file:
        context = json.load(file)
    instructions = context["instructions"]
    script = json.loads(instructions) if instructions.startswith("{") else {}

    if "child_pid_file" in script:
        child = subprocess.Popen(["sleep", "120"])
        with open(script["child_pid_file"], "w") as file:
            file.write(str(child.pid))
    for line in script.get("lines", []):
        print(line, flush=True)
    for number in range(script.get("numbered_lines", 0)):
        print(f"line {number}", flush=True)
    time.sleep(script.get("sleep", 0))
    if script.get("exit"):
        print(script.get("stderr", "scripted failure"), file=sys.stderr)
        return script["exit"]

    output = script.get("output") or {
        "step": context["step_id"],
        "upstream": context["upstream"],
        "state_seen": context["state"],
        "prompt_lines": len(prompt.splitlines()),
        "env_step": os.environ["PX_STEP_ID"],
    }
    with open(os.environ["PX_RESULT_FILE"], "w") as file:
        if "raw_result" in script:
            file.write(script["raw_result"])
        else:
            json.dump({"output": output, "state": script.get("state", {})}, file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
