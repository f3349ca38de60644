"""A test agent whose behaviour each step's instructions describe as JSON.

Keys: lines (printed one by one), numbered_lines (how many "line N" to print),
sleep (seconds), exit (code), stderr (text), state (updates), output (result),
raw_result (text written to the result file as it is), child_pid_file (start a
grandchild `sleep` and write its pid there), raw_stdout and raw_stderr (text
written as bytes, one byte per character U+0000 to U+00FF, so that NUL and
invalid UTF-8 can be sent), long_line ({"text", "times"}: the text repeated as
one stdout line), no_result (write no result file: stdout is the result),
on_attempt ({"1": {...}}: keys that apply to that attempt number only), pid_file
(the agent's own pid is written there), attempt_log (a file that gets a line
"attempt run_id" per run), ignore_sigterm (true: only SIGKILL stops it), usage
(the run's token usage and cost, as the result's "usage"), wait_for_file (wait,
after any sleep, until that file exists).
With plain-text instructions it succeeds at once.
"""

import json
import os
import signal
import subprocess
import sys
import time


def main() -> int:
    prompt = sys.stdin.read()
    with open(os.environ["PX_CONTEXT_FILE"]) as file:
        context = json.load(file)
    instructions = context["instructions"]
    script = json.loads(instructions) if instructions.startswith("{") else {}
    script.update(script.get("on_attempt", {}).get(os.environ["PX_ATTEMPT"], {}))
    if script.get("ignore_sigterm"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if "pid_file" in script:
        with open(script["pid_file"], "w") as file:
            file.write(str(os.getpid()))
    if "attempt_log" in script:
        with open(script["attempt_log"], "a") as file:
            file.write(f"{os.environ['PX_ATTEMPT']} {os.environ['PX_RUN_ID']}\n")

    if "child_pid_file" in script:
        child = subprocess.Popen(["sleep", "120"])
        with open(script["child_pid_file"], "w") as file:
            file.write(str(child.pid))
    for line in script.get("lines", []):
        print(line, flush=True)
    for number in range(script.get("numbered_lines", 0)):
        print(f"line {number}", flush=True)
    if "raw_stdout" in script:
        sys.stdout.buffer.write(script["raw_stdout"].encode("latin-1"))
        sys.stdout.buffer.flush()
    if "long_line" in script:
        print(script["long_line"]["text"] * script["long_line"]["times"], flush=True)
    time.sleep(script.get("sleep", 0))
    if "wait_for_file" in script:
        deadline = time.monotonic() + 120
        while not os.path.exists(script["wait_for_file"]):
            if time.monotonic() > deadline:
                print("wait_for_file: gave up", file=sys.stderr)
                return 1
            time.sleep(0.02)
    if "raw_stderr" in script:
        sys.stderr.buffer.write(script["raw_stderr"].encode("latin-1"))
        sys.stderr.buffer.flush()
    if script.get("exit"):
        if "usage" in script:  # what a failing agent used is counted too
            with open(os.environ["PX_RESULT_FILE"], "w") as file:
                json.dump({"usage": script["usage"]}, file)
        print(script.get("stderr", "scripted failure"), file=sys.stderr)
        return script["exit"]

    output = script.get("output") or {
        "step": context["step_id"],
        "upstream": context["upstream"],
        "state_seen": context["state"],
        "prompt_lines": len(prompt.splitlines()),
        "env_step": os.environ["PX_STEP_ID"],
    }
    if script.get("no_result"):
        return 0
    with open(os.environ["PX_RESULT_FILE"], "w") as file:
        if "raw_result" in script:
            file.write(script["raw_result"])
        else:
            result = {"output": output, "state": script.get("state", {})}
            if "usage" in script:
                result["usage"] = script["usage"]
            json.dump(result, file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
