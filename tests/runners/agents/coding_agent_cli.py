"""A stand-in coding-agent CLI, run the way ``claude -p --output-format json`` is.

It reads the prompt from stdin, prints a few progress lines, writes the prompt it
received to ``cli-work.txt`` in its working directory (the work it "did"), and
prints one JSON result object whose ``result`` text names the prompt's SHA-256.
Options script the rest:

    --result TEXT             the result text
    --fail                    report is_error true
    --subtype NAME            the subtype (default "success")
    --no-text                 leave the result text out
    --raw-result JSON         put this JSON value as the result text
    --input-tokens N          usage counts, as the CLI reports them; the
    --output-tokens N           defaults are 120 in, 45 out, no cache tokens
    --cache-creation-tokens N
    --cache-read-tokens N
    --cost USD                total_cost_usd (default 0.0123)
    --bad-count JSON          report this JSON value as usage.input_tokens
    --no-usage                leave usage and total_cost_usd out
    --no-result               print no result object
    --pretty                  print the result object over several lines
    --quiet                   print no progress lines
    --after TEXT              print TEXT after the result (repeatable)
    --stderr TEXT             print TEXT on stderr
    --sleep SECONDS           sleep before answering
    --exit-code N             exit with this code after printing
"""

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

WORK_FILE = "cli-work.txt"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--result")
    parser.add_argument("--fail", action="store_true")
    parser.add_argument("--subtype", default="success")
    parser.add_argument("--no-text", action="store_true")
    parser.add_argument("--raw-result", type=json.loads)
    parser.add_argument("--input-tokens", type=int, default=120)
    parser.add_argument("--output-tokens", type=int, default=45)
    parser.add_argument("--cache-creation-tokens", type=int, default=0)
    parser.add_argument("--cache-read-tokens", type=int, default=0)
    parser.add_argument("--cost", type=float, default=0.0123)
    parser.add_argument("--bad-count", type=json.loads)
    parser.add_argument("--no-usage", action="store_true")
    parser.add_argument("--no-result", action="store_true")
    parser.add_argument("--pretty", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--after", action="append", default=[])
    parser.add_argument("--stderr")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--exit-code", type=int, default=0)
    return parser.parse_args(argv)


def result_object(options: argparse.Namespace, prompt: str) -> dict:
    digest = hashlib.sha256(prompt.encode()).hexdigest()
    result = {
        "type": "result",
        "subtype": options.subtype,
        "is_error": options.fail,
        "duration_ms": 1234,
        "duration_api_ms": 1100,
        "num_turns": 3,
        "session_id": "5f0c1e2a-0000-4000-8000-000000000001",
    }
    if options.raw_result is not None:
        result["result"] = options.raw_result
    elif not options.no_text:
        result["result"] = options.result or f"Done. prompt sha256:{digest}"
    if not options.no_usage:
        result["total_cost_usd"] = options.cost
        result["usage"] = {
            "input_tokens": options.input_tokens,
            "cache_creation_input_tokens": options.cache_creation_tokens,
            "cache_read_input_tokens": options.cache_read_tokens,
            "output_tokens": options.output_tokens,
            "service_tier": "standard",
        }
        if options.bad_count is not None:
            result["usage"]["input_tokens"] = options.bad_count
    return result


def report(options: argparse.Namespace, line: str) -> None:
    if not options.quiet:
        print(line, flush=True)


def main() -> None:
    options = parse_args(sys.argv[1:])
    prompt = sys.stdin.read()
    report(options, f"reading the prompt ({len(prompt.encode())} bytes)")

    Path(WORK_FILE).write_text(prompt, encoding="utf-8")
    report(options, f"wrote {WORK_FILE}")
    if options.stderr:
        print(options.stderr, file=sys.stderr, flush=True)
    time.sleep(options.sleep)
    report(options, "finished")

    if not options.no_result:
        indent = 2 if options.pretty else None
        print(json.dumps(result_object(options, prompt), indent=indent), flush=True)
    for line in options.after:
        print(line, flush=True)
    sys.exit(options.exit_code)


if __name__ == "__main__":
    main()
