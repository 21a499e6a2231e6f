#!/usr/bin/env python3
"""FAKE idf.py for tests (ESP-IDF cannot be installed here).

Records each call (argv, cwd) as a JSON line in $FAKE_IDF_LOG.  `set-target T`
writes sdkconfig (as the real one does); `build` checks the project's files
exist and writes the artifacts the real build leaves: build/tinyedge_firmware.elf
(a copy of $FAKE_IDF_ELF), .bin, bootloader, partition table and
flasher_args.json.  `FAKE_IDF_FAIL=1` makes `build` fail with a compiler-style error.
"""

import json
import os
import shutil
import sys
from pathlib import Path


def main() -> int:
    args = sys.argv[1:]
    with open(os.environ["FAKE_IDF_LOG"], "a") as f:
        f.write(json.dumps({"argv": args, "cwd": os.getcwd()}) + "\n")
    proj = Path.cwd()
    if args[:1] == ["set-target"]:
        (proj / "sdkconfig").write_text(f"CONFIG_IDF_TARGET=\"{args[1]}\"\n")
        return 0
    if args[:1] == ["build"]:
        for need in ("CMakeLists.txt", "main/CMakeLists.txt", "sdkconfig"):
            if not (proj / need).is_file():
                print(f"CMake Error: {need} missing", file=sys.stderr)
                return 1
        if os.environ.get("FAKE_IDF_FAIL"):
            print("../main/main.c:3:1: error: fake failure", file=sys.stderr)
            return 2
        b = proj / "build"
        (b / "bootloader").mkdir(parents=True, exist_ok=True)
        (b / "partition_table").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(os.environ["FAKE_IDF_ELF"], b / "tinyedge_firmware.elf")
        (b / "tinyedge_firmware.bin").write_bytes(b"\xe9" + bytes(255))
        (b / "bootloader" / "bootloader.bin").write_bytes(b"\xe9" + bytes(63))
        (b / "partition_table" / "partition-table.bin").write_bytes(bytes(3072))
        (b / "flasher_args.json").write_text(json.dumps({"flash_files": {}}))
        print("Project build complete.")
        return 0
    print(f"fake idf.py: unsupported arguments {args}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
