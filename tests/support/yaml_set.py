"""An EDITOR for `ansible-vault edit` in tests: `yaml_set.py KEY.PATH JSON_VALUE FILE` sets one dotted key.

The runbook tells on-call to edit the vault by hand; tests drive the same `ansible-vault edit` command
with this script as the editor, so the decrypt/re-encrypt path is the real one.
"""

import json
import sys

import yaml


def main() -> None:
    path, value, file = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    with open(file, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    node = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    with open(file, "w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)


if __name__ == "__main__":
    main()
