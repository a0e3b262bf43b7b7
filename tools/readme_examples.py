#!/usr/bin/env python3
"""README examples, generated from the commands they show, so they cannot drift.

Every fenced block of README.md that starts with `$ build/src/fsdpsim ...` (continued over lines
ending in a backslash) is run from the top of the repository; the lines after the command are the
example's output:
  - a block whose output has no `...` line shows the whole output: it is replaced by the output;
  - a block with `...` shows excerpts: each shown line is replaced by the output line that starts
    with the same first field (a size, a header's first word);
  - a block with only the command is left alone.

    python3 tools/readme_examples.py            rewrite README.md in place
    python3 tools/readme_examples.py --check    exit 1 (and show the difference) if README.md
                                                is not what the commands print now
Options: --fsdpsim PATH (the binary to run in place of build/src/fsdpsim), --readme PATH.
"""

import argparse
import difflib
import os
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(command, fsdpsim):
    argv = shlex.split(command)
    if argv[0] == "build/src/fsdpsim":
        argv[0] = fsdpsim
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        sys.exit("readme_examples: `%s` exited %d: %s" % (command, out.returncode, out.stderr))
    return out.stdout.rstrip("\n").split("\n")


def regenerate(lines, fsdpsim):
    result, i = [], 0
    while i < len(lines):
        line = lines[i]
        result.append(line)
        i += 1
        if not (line.startswith("```") and i < len(lines) and
                lines[i].startswith("$ build/src/fsdpsim")):
            continue
        command_lines = [lines[i]]
        while command_lines[-1].endswith("\\"):
            i += 1
            command_lines.append(lines[i])
        i += 1
        end = i
        while not lines[end].startswith("```"):
            end += 1
        shown = lines[i:end]
        result += command_lines
        command = " ".join(l.rstrip("\\").strip() for l in command_lines)[2:]
        if not shown:
            pass
        elif "..." not in shown:
            result += run(command, fsdpsim)
        else:
            output = run(command, fsdpsim)
            for s in shown:
                if s == "...":
                    result.append(s)
                    continue
                key = s.split()[0] if s.split() else ""
                match = [o for o in output if o.split() and o.split()[0] == key]
                if not match:
                    sys.exit("readme_examples: `%s` prints no line starting with %r" % (command, key))
                result.append(match[0])
        i = end
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--fsdpsim", default=os.path.join(ROOT, "build/src/fsdpsim"))
    ap.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    args = ap.parse_args()
    with open(args.readme) as f:
        lines = f.read().split("\n")
    new = regenerate(lines, args.fsdpsim)
    if new == lines:
        print("readme_examples: README.md matches what its commands print")
        return 0
    if args.check:
        sys.stdout.writelines(difflib.unified_diff(
            [l + "\n" for l in lines], [l + "\n" for l in new], "README.md", "generated"))
        print("readme_examples: README.md is stale; run python3 tools/readme_examples.py")
        return 1
    with open(args.readme + ".tmp", "w") as f:
        f.write("\n".join(new))
    os.replace(args.readme + ".tmp", args.readme)
    print("readme_examples: README.md regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
