"""Results files: one JSON document per run, every sample included, schema versioned.

The schema is scenarios/harness/results_schema.json (JSON Schema 2020-12), described in
docs/results.md. A file is validated before it is written, and readers (reports, compare) check
`schema_version` before trusting the layout.
"""

import datetime
import json
import os
import uuid
from importlib import resources

import jsonschema

SCHEMA_VERSION = 1


def schema() -> dict:
    schema_file = resources.files("scenarios.harness").joinpath("results_schema.json")
    return json.loads(schema_file.read_text())


def validate(document: dict) -> None:
    """Raise jsonschema.ValidationError naming the first field that does not conform."""
    jsonschema.validate(document, schema())


def new_run(profile: str, command: list[str], target: dict, environment: dict) -> dict:
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return {
        "schema": "kbench-results",
        "schema_version": SCHEMA_VERSION,
        "run_id": uuid.uuid4().hex[:12],
        "started_at": now,
        "finished_at": now,
        "profile": profile,
        "command": command,
        "target": target,
        "environment": environment,
        "scenarios": [],
    }


def write(document: dict, directory: str) -> str:
    """Validate and write the run to <directory>/<start time>-<run id>.json; returns the path."""
    document["finished_at"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    validate(document)
    os.makedirs(directory, exist_ok=True)
    stamp = document["started_at"].replace(":", "").replace("+0000", "Z")[:15]
    path = os.path.join(directory, f"kbench-{stamp}-{document['run_id']}.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1)
    os.replace(path + ".tmp", path)
    return path


class ResultsError(ValueError):
    """A results file that cannot be read: missing, not JSON, not a kbench results file, another
    schema version, or not conforming to the schema. The message is one line naming the file."""


def load(path: str) -> dict:
    """The run in `path`, validated; ResultsError says why it cannot be read."""
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    except IsADirectoryError:
        raise ResultsError(f"{path}: a directory, not a results file") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ResultsError(f"{path} is not a kbench results file: not JSON") from None
    except OSError as e:
        raise ResultsError(f"{path}: {e.strerror or e}") from None
    if not isinstance(document, dict) or document.get("schema") != "kbench-results":
        raise ResultsError(f"{path} is not a kbench results file")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise ResultsError(
            f"{path} has results schema version {document.get('schema_version')}, "
            f"this kbench reads version {SCHEMA_VERSION}"
        )
    try:
        validate(document)
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise ResultsError(
            f"{path} does not conform to the kbench results schema at {where}: {e.message}"
        ) from None
    return document
