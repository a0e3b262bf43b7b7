#!/usr/bin/env python3
"""Regenerate models/resnet50.json: tools/gen_resnet.py --arch resnet50 (kept for old scripts).

Usage:  python3 tools/gen_resnet50.py [--output PATH]   (--help: gen_resnet.py's options)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_resnet  # noqa: E402

if __name__ == "__main__":
    # an old call with a bare path (gen_resnet50.py out.json) still names the output file
    args = sys.argv[1:]
    if len(args) == 1 and not args[0].startswith("-"):
        args = ["--output", args[0]]
    sys.argv = [sys.argv[0], "--arch", "resnet50"] + args
    sys.exit(gen_resnet.main())
